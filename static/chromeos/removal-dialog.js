// "Supprimer" opens its confirmation <dialog> as a modal: the page behind is inert, Esc closes it and the focus
// returns to the button. Tab and Shift+Tab wrap around the dialog's controls instead of leaving for the browser's
// toolbar. Without this script, or without <dialog> support, the link leads to the confirmation page instead.
(function () {
  if (window.removalDialogReady) return; // the panel may be swapped in again by htmx
  window.removalDialogReady = true;
  var FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-removal-open]");
    if (!opener) return;
    var dialog = document.getElementById(opener.getAttribute("data-removal-open"));
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    if (!dialog.open) dialog.showModal();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var dialog = document.querySelector("dialog[open][data-focus-trap]");
    if (!dialog) return;
    var controls = Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) {
      return el.offsetParent !== null;
    });
    if (!controls.length) return;
    var first = controls[0];
    var last = controls[controls.length - 1];
    var inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });
})();
