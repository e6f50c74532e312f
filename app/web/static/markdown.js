// A small Markdown renderer that builds DOM nodes and never parses HTML.
//
// Model output is untrusted: it may hold <script> or <img onerror=...>. Everything here becomes text
// nodes or a fixed set of elements created with document.createElement, so no markup from a model or a
// user can ever run (no innerHTML anywhere). Links keep only http(s) and mailto URLs.
// Supported: paragraphs, line breaks, # headings, - / * / 1. lists, > quotes, ``` fenced code,
// `inline code`, **bold**, *italic* / _italic_, [text](url).

const SAFE_URL = /^(https?:|mailto:)/i;

export function render(markdown) {
  const root = document.createDocumentFragment();
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)\s*$/);
    if (fence) {
      const code = [];
      i += 1;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) code.push(lines[i++]);
      i += 1; // the closing fence (or the end of a still-streaming answer)
      const pre = el("pre");
      const codeEl = el("code");
      if (fence[1]) codeEl.dataset.lang = fence[1];
      codeEl.textContent = code.join("\n");
      pre.append(codeEl);
      root.append(pre);
      continue;
    }
    if (!line.trim()) { i += 1; continue; }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      root.append(inline(el(`h${Math.min(heading[1].length + 2, 6)}`), heading[2]));
      i += 1;
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const numbered = /^\s*\d+[.)]\s+/;
    if (bullet.test(line) || numbered.test(line)) {
      const marker = bullet.test(line) ? bullet : numbered;
      const list = el(marker === bullet ? "ul" : "ol");
      while (i < lines.length && marker.test(lines[i])) {
        list.append(inline(el("li"), lines[i].replace(marker, "")));
        i += 1;
      }
      root.append(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quote = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quote.push(lines[i++].replace(/^\s*>\s?/, ""));
      const block = el("blockquote");
      block.append(render(quote.join("\n")));
      root.append(block);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !/^\s*(```|#{1,6}\s|[-*+]\s|\d+[.)]\s|>)/.test(lines[i])) {
      para.push(lines[i++]);
    }
    if (!para.length) para.push(lines[i++]);
    const p = el("p");
    para.forEach((text, n) => {
      if (n) p.append(el("br"));
      inline(p, text);
    });
    root.append(p);
  }
  return root;
}

// Inline spans: code first (its content is literal), then links, bold, italic; the rest is text.
// Underscores emphasise only at word boundaries (CommonMark), so snake_case and __dunder__ stay text.
const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|(?<!\w)__([^_]+)__(?!\w)|\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)/;

function inline(parent, text) {
  let rest = text;
  while (rest) {
    const m = rest.match(INLINE);
    if (!m) { parent.append(document.createTextNode(rest)); break; }
    if (m.index) parent.append(document.createTextNode(rest.slice(0, m.index)));
    if (m[1]) {
      const code = el("code");
      code.textContent = m[2];
      parent.append(code);
    } else if (m[3] !== undefined) {
      if (SAFE_URL.test(m[4])) {
        const a = el("a");
        a.href = m[4];
        a.rel = "noopener noreferrer nofollow";
        a.target = "_blank";
        inline(a, m[3]);
        parent.append(a);
      } else {
        parent.append(document.createTextNode(m[0]));
      }
    } else if (m[5] !== undefined || m[6] !== undefined) {
      parent.append(inline(el("strong"), m[5] ?? m[6]));
    } else {
      parent.append(inline(el("em"), m[7] ?? m[8]));
    }
    rest = rest.slice(m.index + m[0].length);
  }
  return parent;
}

function el(tag) {
  return document.createElement(tag);
}
