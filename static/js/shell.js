// The console's shell: on a phone the sidebar folds behind the "Menu" button of the top bar.
// Without JavaScript the button stays hidden and the sidebar is shown above the page.
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.querySelector(".menu-toggle");
  const sidebar = document.getElementById("sidebar");
  if (!toggle || !sidebar) return;
  document.documentElement.classList.add("has-menu-toggle");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    sidebar.classList.toggle("open", open);
  });
});

// A region that scrolls must be reachable from the keyboard: tables and code blocks wider than the page
// (on a phone they scroll inside themselves) take the focus when they overflow.
const markScrollable = () => {
  document.querySelectorAll("main table, main pre, main div").forEach((el) => {
    const style = getComputedStyle(el);
    const scroller = [style.overflowX, style.overflowY].some((o) => o === "auto" || o === "scroll");
    if (scroller && !el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
  });
};
document.addEventListener("DOMContentLoaded", markScrollable);
window.addEventListener("load", markScrollable);
window.addEventListener("resize", markScrollable);
document.addEventListener("htmx:afterSettle", markScrollable);
