// instrumentInteractions: a click or a form submit on an element starts a
// root span (`click <name>`, `submit <name>`), current for the event's
// handlers and the microtasks they queue, so their fetches, XHRs and
// operations become its children. It never joins another operation's trace.
//
// The name comes from the element the user acted on: its `data-trace-name`
// (settings.nameAttribute), else its id or name
// attribute, else, for a button or link, its text (whitespace collapsed, at
// most 40 characters); never a form field's value or text.
// Settings: { events: ['click', 'submit'], selector, nameAttribute }.
// `selector` picks the elements a click counts on (default: links, buttons,
// checkboxes and radios, summary, ARIA buttons/links/tabs/menu items, and
// anything with the name attribute); a click elsewhere starts nothing, and
// neither does a click on a form's submit button (its submit event does).
//
// The span runs from the input (event.timeStamp) to the next rendered frame:
// its duration is the latency the user saw; its fetches may end later.

import { afterPaint, describe, listen, unixMs } from './shared.js';

const CONTROLS = 'a[href],button,input[type=submit],input[type=button],input[type=checkbox],input[type=radio],summary,'
  + '[role=button],[role=link],[role=tab],[role=menuitem],[role=checkbox]';
const NO_TEXT = /^(input|select|textarea|form)$/i; // named by attribute or id only

export function install(hooks, { events = ['click', 'submit'], nameAttribute = 'data-trace-name', selector } = {}) {
  const target = globalThis.document && globalThis.window;
  if (!target?.addEventListener) return () => {};
  const tracing = hooks.tracing;
  const select = selector ?? `[${nameAttribute}],${CONTROLS}`;

  const onEvent = (e) => hooks.safe(() => {
    const el = e.type === 'submit' ? e.target : e.target?.closest?.(select);
    // A form's submit button: the submit event that follows is the interaction.
    if (!el?.tagName || (e.type === 'click' && el.form && el.type === 'submit')) return;
    const name = el.getAttribute(nameAttribute) || el.id || el.getAttribute('name')
      || (!NO_TEXT.test(el.tagName) && !el.isContentEditable ? el.textContent.replace(/\s+/g, ' ').trim() : '')
      || describe(el);
    const span = tracing.startSpan(`${e.type} ${name.slice(0, 40)}`, {
      parent: null,
      startTime: unixMs(e.timeStamp),
      attributes: { 'browser.interaction.type': e.type, 'browser.interaction.target': describe(el) },
    });
    hooks.enterEvent(hooks.contextOf(span), e);
    afterPaint(() => span.end());
  });
  const removers = events.map((type) => listen(target, type, onEvent));
  return () => removers.forEach((r) => r());
}
