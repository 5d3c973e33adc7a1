// Offline persistence: OTLP request bodies the exporter could not send (the
// network was offline, the collector was down when the page hid, retries ran
// out), kept in IndexedDB and sent on a later page load, when the `online`
// event fires, after the collector accepts an export again, or on flush().
// tracelink.js loads this module (a literal dynamic import) only where
// IndexedDB exists and `persist: false` was not given.
//
// Store: database `tracelink-outbox`, object store `outbox`, one record per
// request body: { id, key, endpoint, contentType, body, spans, createdAt },
// `key` = endpoint + content type (records of other keys belong to other
// setups on this origin and are left alone unless expired). Only bodies are
// stored, never the collector headers (they may hold credentials).
//
// Never twice: a record leaves the store before its body is sent. Claiming is
// one readwrite transaction (get, then delete if still there); IndexedDB runs
// readwrite transactions on a store one after another, across the tabs and
// workers of an origin, so exactly one claimant gets each record. A send that
// fails retryably (no answer, 429, 502, 503, 504) puts the record back. The
// limit of this at-most-once scheme: a page that dies after claiming a record
// and before its send completes loses that record. Web Locks, where available,
// keep two tabs from draining at the same time; that saves work only, the
// claim transaction alone is what makes it exactly once.
//
// Bounds, per key: at most `maxBytes` of bodies (the oldest are dropped to
// make room) and `maxAgeMs` of age. Every record dropped is counted by reason:
// age, bytes (evicted for room), corrupt (unreadable or foreign records:
// counted as records, their span count cannot be trusted), refused (the
// collector answered a stored body with a non-retryable error). A body larger
// than `maxBytes`, or any storage failure, makes `store` answer false: the
// core then counts those spans as dropped (`droppedPersistFailed`).

const DB_NAME = 'tracelink-outbox';
const STORE = 'outbox';
const BY_KEY = 'key';
const LOCK = 'tracelink-outbox-drain';
const RETRYABLE = new Set([0, 1, 429, 502, 503, 504]); // 0: no answer, 1: timeout

/** A promise for an IDBRequest's result. */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Runs `body(store)` in one transaction; resolves with what it returned once
 * the transaction committed, rejects if it aborted.
 */
function transact(db, mode, body) {
  return new Promise((resolve, reject) => {
    let result;
    let tx;
    try {
      tx = db.transaction(STORE, mode);
      tx.oncomplete = () => resolve(result);
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
      // Commit as soon as the last request is made rather than when the event
      // loop idles: a page that is unloading may not get that far.
      const commit = (r) => {
        result = r;
        try { tx.commit?.(); } catch { /* already committing */ }
      };
      const r = body(tx.objectStore(STORE));
      if (!(r instanceof Promise)) commit(r);
      else {
        r.then(commit, (e) => {
          try { tx.abort(); } catch { /* already finished */ }
          reject(e);
        });
      }
    } catch (e) {
      reject(e);
    }
  });
}

/** Visits every record of `source` (a store or an index) in key order. */
function eachRecord(source, range, visit) {
  return new Promise((resolve, reject) => {
    const request = source.openCursor(range);
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const cursor = request.result;
      if (!cursor) return resolve();
      try { visit(cursor); } catch (e) { return reject(e); }
      cursor.continue();
    };
  });
}

const keyOf = (endpoint, contentType) => `${endpoint} ${contentType}`;

/** Whether `r` is a record this module wrote (any key). */
function isValid(r) {
  try {
    return r !== null && typeof r === 'object'
      && typeof r.endpoint === 'string' && typeof r.contentType === 'string'
      && r.key === keyOf(r.endpoint, r.contentType)
      && r.body instanceof Uint8Array && r.body.byteLength > 0
      && Number.isSafeInteger(r.spans) && r.spans > 0
      && typeof r.createdAt === 'number' && Number.isFinite(r.createdAt);
  } catch {
    return false; // a getter that throws, a revoked proxy: not ours
  }
}

/**
 * Opens the store. Rejects where IndexedDB refuses (private modes, blocked
 * storage, a foreign database of that name).
 * `send(body) → Promise<status>`: the HTTP status, 0 without an answer, 1 on timeout.
 */
export async function openOutbox({ indexedDB, endpoint, contentType, maxBytes, maxAgeMs, send }) {
  const request = indexedDB.open(DB_NAME, 1);
  request.onupgradeneeded = () => {
    const store = request.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    store.createIndex(BY_KEY, 'key');
  };
  const db = await done(request);
  try {
    // A database of that name made by someone else fails here, not later.
    await transact(db, 'readonly', (store) => { store.index(BY_KEY); });
  } catch (e) {
    db.close();
    throw e;
  }
  // Another version of the schema elsewhere: step aside.
  db.onversionchange = () => db.close();
  return new Outbox(db, { endpoint, contentType, maxBytes, maxAgeMs, send });
}

class Outbox {
  constructor(db, options) {
    this._db = db;
    this._o = options;
    this._key = keyOf(options.endpoint, options.contentType);
    this._draining = null;
    this._closed = false;
    /** Spans of this key in the store, as last seen. */
    this.stored = 0;
    this.sent = 0;
    this.droppedAge = 0;
    this.droppedBytes = 0;
    this.droppedCorrupt = 0;
    this.droppedRefused = 0;
  }

  /** Whether this setup's records may be waiting in the store. */
  pending() {
    return this.stored > 0;
  }

  _expired(r, now) {
    const age = now - r.createdAt;
    return age > this._o.maxAgeMs || age < -this._o.maxAgeMs; // far future: a clock that jumped
  }

  /**
   * Stores a request body of `spans` spans, then drops this key's oldest
   * records (counted) to stay within `maxBytes`. Resolves true when stored;
   * never rejects.
   */
  async store(body, spans) {
    if (this._closed || !(body.byteLength > 0) || body.byteLength > this._o.maxBytes) return false;
    try {
      // The write is made and committed at once, before anything else: at
      // page hide this runs in the pagehide handler, and a page being torn
      // down gets no further round trip to the database.
      await transact(this._db, 'readwrite', (store) => {
        store.add({ key: this._key, endpoint: this._o.endpoint, contentType: this._o.contentType, body, spans, createdAt: Date.now() });
      });
    } catch {
      return false;
    }
    this.stored += spans;
    try { await this._trim(); } catch { /* next store or drain trims */ }
    return true;
  }

  /**
   * Drops this key's corrupt and expired records, then its oldest ones until
   * its bodies fit `maxBytes` (all counted). Answers the remaining ids, oldest first.
   */
  async _trim() {
    const now = Date.now();
    const counts = { age: 0, bytes: 0, corrupt: 0 };
    let stored = 0;
    const ids = await transact(this._db, 'readwrite', async (store) => {
      const live = [];
      let total = 0;
      await eachRecord(store.index(BY_KEY), IDBKeyRange.only(this._key), (cursor) => {
        const r = cursor.value;
        if (!isValid(r)) {
          cursor.delete();
          counts.corrupt++;
        } else if (this._expired(r, now)) {
          cursor.delete();
          counts.age += r.spans;
        } else {
          live.push([cursor.primaryKey, r.body.byteLength, r.spans]);
          total += r.body.byteLength;
          stored += r.spans;
        }
      });
      // Oldest first (ids grow); the newest always fits (store checks).
      while (live.length > 1 && total > this._o.maxBytes) {
        const [id, bytes, n] = live.shift();
        store.delete(id);
        total -= bytes;
        stored -= n;
        counts.bytes += n;
      }
      return live.map(([id]) => id);
    });
    this.droppedAge += counts.age;
    this.droppedBytes += counts.bytes;
    this.droppedCorrupt += counts.corrupt;
    this.stored = stored;
    return ids;
  }

  /**
   * Sends this key's stored bodies, oldest first, each claimed before it is
   * sent; stops at the first retryable failure (that body is put back).
   * Concurrent calls share one run. Never rejects.
   */
  drain() {
    if (this._closed) return Promise.resolve();
    this._draining ??= (async () => {
      try {
        const locks = globalThis.navigator?.locks;
        if (typeof locks?.request === 'function') {
          // Another tab is draining: let it (it claims what it sends anyway).
          await locks.request(LOCK, { ifAvailable: true }, (lock) => (lock ? this._drain() : undefined));
        } else {
          await this._drain();
        }
      } catch { /* storage failed: records stay for next time */ } finally {
        this._draining = null;
      }
    })();
    return this._draining;
  }

  async _drain() {
    const ids = await this._sweep();
    for (const id of ids) {
      if (this._closed) return;
      const record = await this._claim(id);
      if (!record) continue; // another tab has it
      this.stored = Math.max(0, this.stored - record.spans);
      let status;
      try { status = await this._o.send(record.body); } catch { status = 0; }
      if (status >= 200 && status < 300) {
        this.sent += record.spans;
      } else if (RETRYABLE.has(status)) {
        // Not delivered: back in the store, same id and age; try again later.
        try {
          await transact(this._db, 'readwrite', (store) => { store.add(record); });
          this.stored += record.spans;
        } catch {
          this.droppedRefused += record.spans;
        }
        return;
      } else {
        this.droppedRefused += record.spans;
      }
    }
  }

  /**
   * One pass over the whole store: drops corrupt records and expired ones of
   * any key (counted), then trims this key (see `_trim`); answers its ids.
   */
  async _sweep() {
    const now = Date.now();
    const counts = { age: 0, corrupt: 0 };
    await transact(this._db, 'readwrite', (store) => eachRecord(store, undefined, (cursor) => {
      const r = cursor.value;
      if (!isValid(r)) {
        cursor.delete();
        counts.corrupt++;
      } else if (r.key !== this._key && this._expired(r, now)) {
        cursor.delete();
        counts.age += r.spans;
      }
    }));
    this.droppedAge += counts.age;
    this.droppedCorrupt += counts.corrupt;
    return this._trim();
  }

  /** Takes record `id` out of the store if it is still there: exactly one caller gets it. */
  async _claim(id) {
    return transact(this._db, 'readwrite', async (store) => {
      const r = await done(store.get(id));
      if (!isValid(r) || r.key !== this._key) return null;
      store.delete(id);
      return r;
    });
  }

  /** The counters, as `stats()` shows them (spans; corrupt: records). */
  stats() {
    return {
      persistedSent: this.sent,
      persistedDropped: this.droppedAge + this.droppedBytes + this.droppedCorrupt + this.droppedRefused,
      persistedDroppedAge: this.droppedAge,
      persistedDroppedBytes: this.droppedBytes,
      persistedDroppedCorrupt: this.droppedCorrupt,
      persistedDroppedRefused: this.droppedRefused,
      persistedStored: this.stored,
    };
  }

  close() {
    this._closed = true;
    try { this._db.close(); } catch { /* already closed */ }
  }
}
