// "Supprimer" opens its confirmation <dialog> (modal: focus stays inside, Esc closes, the opener gets focus
// back). Without this script, or without <dialog> support, the link leads to the confirmation page instead.
(function () {
  if (window.removalDialogReady) return; // the panel may be swapped in again by htmx
  window.removalDialogReady = true;
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-removal-open]");
    if (!opener) return;
    var dialog = document.getElementById(opener.getAttribute("data-removal-open"));
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    if (!dialog.open) dialog.showModal();
  });
})();
