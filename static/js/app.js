/* Small behaviours for the merchant pages; everything works without them, only less smoothly. */
(function () {
  "use strict";

  // A second click on a submit button must not send the form again (the server is idempotent too).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-disable-on-submit") || event.defaultPrevented) return;
    if (form.hasAttribute("hx-post")) return;
    if (form.dataset.submitting === "1") { event.preventDefault(); return; }
    form.dataset.submitting = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      // Disable after the browser has collected the form data, so the button's own value is kept.
      setTimeout(function () {
        button.disabled = true;
        if (button.dataset.submitLabel) button.textContent = button.dataset.submitLabel;
      }, 0);
    });
  });

  // Coming back with the back button restores a page from the bfcache with disabled buttons.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
    });
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-use-name],[data-copy],[data-clear]");
    if (!target) return;
    if (target.hasAttribute("data-use-name")) {
      var input = document.querySelector("input[name=name]");
      input.value = target.getAttribute("data-use-name");
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.focus();
    } else if (target.hasAttribute("data-copy")) {
      navigator.clipboard && navigator.clipboard.writeText(target.getAttribute("data-copy")).then(function () {
        var old = target.textContent;
        target.textContent = "Copied";
        setTimeout(function () { target.textContent = old; }, 1500);
      });
    } else if (target.hasAttribute("data-clear")) {
      var box = document.querySelector(target.getAttribute("data-clear"));
      if (box) box.innerHTML = "";
    }
  });

  // The name check depends on the engine too (a name you already use for the other engine).
  document.addEventListener("change", function (event) {
    if (event.target.name !== "engine") return;
    var input = document.querySelector("input[name=name][hx-get]");
    if (input && input.value && window.htmx) window.htmx.trigger(input, "engine-changed");
  });

  // Error fragments (409 not ready, 503 cluster down) are meant to be shown where the user clicked.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 600 && event.detail.target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
