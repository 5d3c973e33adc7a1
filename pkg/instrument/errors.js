// instrumentErrors: uncaught errors (`error`) and unhandled promise
// rejections (`unhandledrejection`) recorded as exceptions (type, message,
// stack; ERROR status) on the current span, or, where none is current, on a
// short standalone span named after the event. An error traceOperation or
// recordException already recorded is not recorded twice. Listens only:
// default handling (the console report) is left to the browser. Pages and
// workers; a no-op where the global scope dispatches no such events.

export function install(hooks) {
  const target = globalThis;
  if (typeof target.addEventListener !== 'function' || typeof ErrorEvent !== 'function') return () => {};
  const tracing = hooks.tracing;

  const record = (e) => hooks.safe(() => {
    let error;
    if (e.type === 'error') {
      if (!(e instanceof ErrorEvent)) return; // a resource that failed to load: not an exception
      // Cross-origin scripts report only "Script error." with no error object.
      error = e.error ?? { name: 'Error', message: e.message, stack: e.filename ? `at ${e.filename}:${e.lineno}:${e.colno}` : '' };
    } else {
      error = e.reason;
    }
    if (hooks.wasRecorded(error)) return;
    const current = tracing.currentSpan();
    if (current.isRecording()) return void current.recordException(error);
    const span = tracing.startSpan(e.type);
    span.recordException(error);
    span.end();
  });
  target.addEventListener('error', record);
  target.addEventListener('unhandledrejection', record);
  return () => {
    target.removeEventListener('error', record);
    target.removeEventListener('unhandledrejection', record);
  };
}
