// A small markdown renderer for postmortems: headings, paragraphs, lists (one level of nesting),
// checklists, inline code and links. It builds React elements (never HTML strings), and a link is a
// link only to an event of the timeline (#event-<id>) or to http(s): anything else stays text.
import type { ReactNode } from "react";

const INLINE = /\[([^\]]+)\]\(([^)\s]+)\)|`([^`]+)`/g;

export function safeHref(href: string): string | null {
  if (/^#event-[0-9a-f-]{36}$/i.test(href)) return href;
  return /^https?:\/\//i.test(href) ? href : null;
}

export function inline(text: string, key = ""): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const at = match.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    if (match[3] !== undefined) {
      out.push(<code key={`${key}c${at}`}>{match[3]}</code>);
    } else {
      const href = safeHref(match[2]);
      out.push(
        href ? (
          <a
            key={`${key}a${at}`}
            href={href}
            className={href.startsWith("#event-") ? "citation" : undefined}
            {...(href.startsWith("#") ? {} : { target: "_blank", rel: "noreferrer" })}
          >
            {match[1]}
          </a>
        ) : (
          match[0]
        ),
      );
    }
    last = at + match[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

type Item = { text: string; checked: boolean | null; nested: boolean };

export function Markdown({ text }: { text: string }) {
  const blocks: ReactNode[] = [];
  let list: Item[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length) {
      blocks.push(<p key={`p${blocks.length}`}>{inline(paragraph.join(" "), `p${blocks.length}`)}</p>);
      paragraph = [];
    }
    if (list.length) {
      const n = blocks.length;
      blocks.push(
        <ul key={`l${n}`} className="md-list">
          {list.map((item, index) => (
            <li key={index} className={item.nested ? "md-nested" : undefined}>
              {item.checked !== null ? (
                <input type="checkbox" checked={item.checked} readOnly disabled aria-label="done" />
              ) : null}{" "}
              {inline(item.text, `l${n}-${index}`)}
            </li>
          ))}
        </ul>,
      );
      list = [];
    }
  };
  for (const line of text.split("\n")) {
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const bullet = /^(\s*)[-*]\s+(\[( |x|X)\]\s+)?(.*)$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1].length;
      const content = inline(heading[2], `h${blocks.length}`);
      blocks.push(
        level === 1 ? (
          <h3 key={`h${blocks.length}`}>{content}</h3>
        ) : level === 2 ? (
          <h4 key={`h${blocks.length}`}>{content}</h4>
        ) : (
          <h5 key={`h${blocks.length}`}>{content}</h5>
        ),
      );
    } else if (bullet) {
      if (paragraph.length) {
        const kept = list;
        list = [];
        flush();
        list = kept;
      }
      list.push({
        text: bullet[4],
        checked: bullet[2] ? bullet[3].toLowerCase() === "x" : null,
        nested: bullet[1].length > 0,
      });
    } else if (!line.trim()) {
      flush();
    } else {
      if (list.length) flush();
      paragraph.push(line.trim());
    }
  }
  flush();
  return <div className="markdown">{blocks}</div>;
}
