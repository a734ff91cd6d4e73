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

// The OU tree: each OU's sub-OUs fold behind its button (aria-expanded); the selected OU's branch starts open.
// On a phone the whole tree starts folded above the table. Without this script every level shows, and the
// links filter the table all the same.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".ou-tree .ou-toggle").forEach((button) => {
    const list = document.getElementById(button.getAttribute("aria-controls"));
    if (!list) return;
    const set = (open) => {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      list.hidden = !open;
    };
    set(button.closest("li").dataset.open === "true");
    button.hidden = false;
    button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
  });
  // The whole tree folds: above the table on a phone, to a narrow « UO » column beside it on a screen too small
  // to show it and every default column. A user who unfolds (or folds) it finds it so on the next page.
  const panel = document.querySelector("details[data-ou-panel]");
  if (panel) {
    const key = "mdm.ouPanel";
    let saved = null;
    try { saved = window.localStorage.getItem(key); } catch (e) { saved = null; }
    panel.open = saved ? saved === "open" : window.matchMedia("(min-width: 1600px)").matches;
    panel.addEventListener("toggle", () => {
      try { window.localStorage.setItem(key, panel.open ? "open" : "closed"); } catch (e) { /* private mode */ }
    });
  }
});
