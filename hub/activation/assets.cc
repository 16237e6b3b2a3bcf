// hub/activation/assets.cc
#include "hub/activation/assets.h"

namespace llmbox::hub::activation {

std::string_view ActivationCss() {
  return R"css(:root {
  color-scheme: light dark;
  --bg: #f5f4ef; --card: #ffffff; --ink: #1f1e1b; --muted: #66645d; --line: #e3e0d6;
  --accent: #c15f3c; --accent-ink: #ffffff; --ok: #2e7d4f; --warn: #9a5b00; --bad: #b3261e;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #1b1a17; --card: #252420; --ink: #f1efe7; --muted: #aaa79d; --line: #3b3934; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; min-height: 100vh; background: var(--bg); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  display: flex; flex-direction: column; align-items: center; padding: 1.5rem 1rem 2rem;
}
.top, main, footer { width: 100%; max-width: 35rem; }
.top { display: flex; align-items: center; justify-content: space-between; margin: 0 0 1rem; }
.brand { font-weight: 700; font-size: 1.1rem; letter-spacing: .01em; }
.brand::before {
  content: ""; display: inline-block; width: .85rem; height: .85rem; margin-right: .5rem;
  border-radius: .2rem; background: var(--accent); vertical-align: -.05rem;
}
.badge {
  display: inline-block; font-size: .8rem; font-weight: 600; padding: .15rem .65rem;
  border-radius: 999px; border: 1px solid currentColor; white-space: nowrap;
}
.state-pending .badge { color: var(--accent); }
.state-working .badge { color: var(--warn); }
.state-ready .badge { color: var(--ok); }
.state-error .badge, .state-expired .badge, .state-destroyed .badge, .state-unknown .badge {
  color: var(--bad);
}
main {
  background: var(--card); border: 1px solid var(--line); border-radius: .9rem;
  padding: 1.5rem 1.5rem 1.25rem; box-shadow: 0 1px 3px rgba(0, 0, 0, .05);
}
h1 { font-size: 1.35rem; line-height: 1.3; margin: 0 0 .75rem; overflow-wrap: anywhere; }
p { margin: 0 0 1rem; }
code {
  font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .92em;
  background: rgba(127, 127, 127, .13); padding: .05rem .35rem; border-radius: .3rem;
  overflow-wrap: anywhere;
}
.description { color: var(--muted); margin-top: -.25rem; overflow-wrap: anywhere; }
ol.steps { list-style: none; padding: 0; margin: 1.25rem 0 .5rem; counter-reset: step; }
ol.steps > li { position: relative; padding-left: 2.6rem; margin-bottom: 1.35rem; }
ol.steps > li::before {
  counter-increment: step; content: counter(step); position: absolute; left: 0; top: -.05rem;
  width: 1.85rem; height: 1.85rem; border-radius: 50%; background: var(--accent);
  color: var(--accent-ink); font-weight: 700; font-size: .9rem;
  display: flex; align-items: center; justify-content: center;
}
.step-title { font-weight: 600; display: block; margin-bottom: .5rem; }
.button {
  display: inline-block; padding: .7rem 1.2rem; border-radius: .55rem; border: 0;
  background: var(--accent); color: var(--accent-ink); font: inherit; font-weight: 600;
  text-decoration: none; cursor: pointer; text-align: center;
}
.button:hover { filter: brightness(1.07); }
.button:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.button:disabled { opacity: .6; cursor: progress; }
label { display: block; }
input[type=text], input[type=password] {
  width: 100%; margin: 0 0 .75rem; padding: .7rem .8rem; border: 1px solid var(--line);
  border-radius: .5rem; background: transparent; color: inherit;
  font: 1rem ui-monospace, "DejaVu Sans Mono", monospace;
}
.notice {
  border-left: 4px solid var(--bad); background: rgba(179, 38, 30, .08);
  padding: .7rem .9rem; border-radius: .4rem; margin: 0 0 1rem; overflow-wrap: anywhere;
}
.notice strong { display: block; }
.notice.ok { border-color: var(--ok); background: rgba(46, 125, 79, .09); }
.muted { color: var(--muted); font-size: .9rem; }
.session { display: block; margin: .5rem 0 1rem; font-size: .9rem; overflow-wrap: anywhere; }
.working { display: flex; gap: .9rem; align-items: center; margin: .5rem 0 1rem; }
.spinner {
  flex: none; width: 1.6rem; height: 1.6rem; border-radius: 50%;
  border: 3px solid var(--line); border-top-color: var(--warn);
  animation: spin 1s linear infinite;
}
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
.state-signin .badge { color: var(--accent); }
.state-refused .badge,
.state-signin-failed .badge { color: var(--bad); }
.who {
  width: 100%; max-width: 35rem; margin-top: .75rem; display: flex; gap: .5rem;
  align-items: center; justify-content: center; color: var(--muted); font-size: .85rem;
  flex-wrap: wrap;
}
.who form { display: inline; margin: 0; }
.link {
  background: none; border: 0; padding: 0; color: var(--accent); font: inherit;
  text-decoration: underline; cursor: pointer;
}
.state-consent .badge { color: var(--accent); }
.key-form, .consent-form { margin: 0 0 1rem; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1rem 0 .5rem; }
.button.secondary { background: transparent; color: var(--ink); border: 1px solid var(--line); }
/* The consent page's Allow arms a moment after the page shows: a page that opens this one
   under a person's double click (double-click jacking) finds nothing to press. */
.button.arming { animation: llmbox-arm .6s step-end; }
@keyframes llmbox-arm { from { visibility: hidden; } to { visibility: visible; } }
.notice.redirect { border-color: var(--accent); background: rgba(193, 95, 60, .08); }
.host {
  display: block; font-size: 1.3rem; font-weight: 700; margin: .25rem 0 0;
  overflow-wrap: anywhere;
}
footer { margin-top: 1rem; text-align: center; color: var(--muted); font-size: .8rem; }
@media (max-width: 30rem) {
  body { padding: 1rem .75rem 1.5rem; }
  main { padding: 1.25rem 1.1rem 1rem; }
  .button { display: block; width: 100%; }
}
)css";
}

std::string_view ActivationJs() {
  return R"js(// The activation page's only script: it refreshes the page while the box works, and says
// that a code is being checked once the form is sent. The page works without it.
(function () {
  'use strict';
  var main = document.querySelector('main[data-state]');
  if (!main) return;
  var form = document.querySelector('form.code-form');
  if (form) {
    form.addEventListener('submit', function () {
      var button = form.querySelector('button');
      if (button) {
        button.disabled = true;
        button.textContent = 'Checking the code\u2026';
      }
    });
  }
  var state = main.getAttribute('data-state');
  var url = main.getAttribute('data-status-url');
  if (state !== 'working' || !url) return;
  function poll() {
    fetch(url, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok || r.status === 410 ? r.json() : null; })
      .then(function (s) {
        if (s && s.state && s.state !== state) {
          window.location.replace(window.location.pathname);
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
})();
)js";
}

std::string_view FaviconSvg() {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
         "<rect x=\"2\" y=\"2\" width=\"12\" height=\"12\" rx=\"3\" fill=\"#c15f3c\"/></svg>";
}

}  // namespace llmbox::hub::activation
