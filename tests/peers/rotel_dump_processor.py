# A rotel trace processor that records what the collector decoded.
#
# rotel-agent loads this file with `--otlp-with-trace-processor <abs path>`
# and calls process_spans() for every batch it received, whatever the
# transport (OTLP/HTTP protobuf or JSON, OTLP/gRPC). Each span is appended to
# the file named by $TRACELINK_SPANS_FILE as one JSON line, so a test can read
# back exactly what a real collector made of the bytes it was sent.
#
# Attribute values keep their OTLP type: {"stringValue": "x"},
# {"boolValue": true}, {"intValue": 5}, {"doubleValue": 2.5} (non-finite
# doubles as the strings "NaN", "Infinity", "-Infinity", so every line is
# strict JSON), {"arrayValue": [...]}, {"kvlistValue": {...}},
# {"bytesValue": "<hex>"}; an unset value is null.
#
# Any exception escaping process_spans() makes rotel panic and exit, so the
# whole body is wrapped; a failure is written as {"processor_error": "..."}
# for the test to report.
import json
import math
import os

_OUT = os.environ.get("TRACELINK_SPANS_FILE", "spans.jsonl")


def _double(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _any(v):
    if v is None:
        return None
    x = v.value
    if x is None:
        return None
    if isinstance(x, bool):  # before int: bool is an int in Python
        return {"boolValue": x}
    if isinstance(x, int):
        return {"intValue": x}
    if isinstance(x, float):
        return {"doubleValue": _double(x)}
    if isinstance(x, str):
        return {"stringValue": x}
    if isinstance(x, (bytes, bytearray)):
        return {"bytesValue": bytes(x).hex()}
    if isinstance(x, list):  # rotel surfaces bytes_value as a list of ints
        return {"bytesValue": bytes(x).hex()}
    items = [x[i] for i in range(len(x))]  # ArrayValue or KeyValueList
    if items and hasattr(items[0], "key"):
        return {"kvlistValue": {kv.key: _any(kv.value) for kv in items}}
    return {"arrayValue": [_any(i) for i in items]}


def _attrs(kvs):
    return [{"key": kv.key, "value": _any(kv.value)} for kv in kvs]


def _code(code):
    # a pyo3 enum: int() works on some builds, str() gives "StatusCode.Error" on others
    try:
        return int(code)
    except Exception:
        name = str(code).rsplit(".", 1)[-1].lower()
        return {"unset": 0, "ok": 1, "error": 2}.get(name, str(code))


def _status(st):
    if st is None:
        return None
    return {"code": _code(st.code), "message": st.message}


def _event(e):
    return {
        "name": e.name,
        "timeUnixNano": e.time_unix_nano,
        "attributes": _attrs(e.attributes),
        "droppedAttributesCount": e.dropped_attributes_count,
    }


def _link(l):
    return {
        "traceId": bytes(l.trace_id).hex(),
        "spanId": bytes(l.span_id).hex(),
        "traceState": l.trace_state,
        "flags": l.flags,
        "attributes": _attrs(l.attributes),
        "droppedAttributesCount": l.dropped_attributes_count,
    }


def _span(sp, resource, scope):
    return {
        "resource": resource,
        "scope": scope,
        "traceId": bytes(sp.trace_id).hex(),
        "spanId": bytes(sp.span_id).hex(),
        "parentSpanId": bytes(sp.parent_span_id).hex(),
        "traceState": sp.trace_state,
        "flags": sp.flags,
        "name": sp.name,
        "kind": sp.kind,
        "startTimeUnixNano": sp.start_time_unix_nano,
        "endTimeUnixNano": sp.end_time_unix_nano,
        "attributes": _attrs(sp.attributes),
        "droppedAttributesCount": sp.dropped_attributes_count,
        "events": [_event(e) for e in sp.events],
        "droppedEventsCount": sp.dropped_events_count,
        "links": [_link(l) for l in sp.links],
        "droppedLinksCount": sp.dropped_links_count,
        "status": _status(sp.status),
    }


def _record(resource_spans):
    res = resource_spans.resource
    resource = {"attributes": _attrs(res.attributes)} if res is not None else None
    lines = []
    for ss in resource_spans.scope_spans:
        sc = ss.scope
        scope = {"name": sc.name, "version": sc.version} if sc is not None else None
        for sp in ss.spans:
            lines.append(json.dumps(_span(sp, resource, scope), allow_nan=False))
    if lines:
        with open(_OUT, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def process_spans(resource_spans):
    try:
        _record(resource_spans)
    except BaseException as e:  # never let anything reach rotel
        try:
            with open(_OUT, "a", encoding="utf-8") as f:
                f.write(json.dumps({"processor_error": "%s: %s" % (type(e).__name__, e)}) + "\n")
        except BaseException:
            pass
