// The conversation list's items. A module of its own so its cost can be measured in the browser on
// its own (bench/web_render.py renders 1,000 of them). What keeps an item cheap: the date formatters
// are built once per page (toLocaleString builds one per call); one click listener on the list
// serves every item (`openOnClick`); an item's tooltip (model and full time) is written when the
// pointer or focus first reaches it; and the stylesheet lets the browser skip laying out items
// outside the visible part of the list (`content-visibility: auto`).

const timeOfDay = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
const dayOfYear = new Intl.DateTimeFormat([], { month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });

// When a conversation was last active: the time if today, else the day.
export function when(iso, today = new Date().toDateString()) {
  const date = new Date(iso);
  return (today === date.toDateString() ? timeOfDay : dayOfYear).format(date);
}

// One entry of the list: a button carrying the conversation's id (see `openOnClick`).
export function sessionItem(session, today = new Date().toDateString()) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "session";
  button.dataset.id = session.id;
  button.dataset.model = session.model || "default model";
  const title = document.createElement("span");
  title.className = "session-name";
  title.textContent = session.title || "Untitled";
  const time = document.createElement("time");
  time.dateTime = session.updated_at;
  time.textContent = when(session.updated_at, today);
  button.append(title, time);
  li.append(button);
  return li;
}

// Every item of a page of conversations, in one fragment (one insertion into the list).
export function sessionItems(sessions) {
  const today = new Date().toDateString();
  const fragment = document.createDocumentFragment();
  for (const session of sessions) fragment.append(sessionItem(session, today));
  return fragment;
}

// One listener for the whole list: a click on an item opens its conversation (`open(id)`).
export function openOnClick(list, open) {
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button.session");
    if (button) open(button.dataset.id);
  });
  const tooltip = (event) => {
    const button = event.target.closest("button.session");
    if (!button || button.title) return;
    const time = button.querySelector("time");
    button.title = `${button.dataset.model} · ${full.format(new Date(time.dateTime))}`;
  };
  list.addEventListener("pointerover", tooltip);
  list.addEventListener("focusin", tooltip);
}
