// Device list: "select all on this page" and the live count of checked rows. Works without it too:
// every checkbox is a plain form field.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.querySelector("[data-select-page]");
  const boxes = () => document.querySelectorAll('input[name="ids"][form="device-actions"]');
  const count = document.querySelector("[data-selected-count]");
  const refresh = () => {
    if (count) count.textContent = [...boxes()].filter((b) => b.checked).length;
  };
  if (all) {
    all.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = all.checked; });
      refresh();
    });
  }
  boxes().forEach((b) => b.addEventListener("change", refresh));
  refresh();
});
