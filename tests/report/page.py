"""Read an HTML page as a reader sees it, for tests: the text of its elements, the tags,
their attributes. Never the raw bytes, where a base64 picture can hold any letters.

    page = Page.load(out / "report.html")
    assert "Per class" in page.text                # visible text, whitespace collapsed
    assert page.count("figure") == 7
    assert page.attrs("img", "src")[0].startswith("data:image/jpeg")
    assert "IoU" not in page.text_without("table")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
HIDDEN = {"head", "style", "script", "title"}  # their text is not shown on the page
# Elements that start a new line or cell; their text does not run into a neighbour's.
BREAKS = {
    *("address", "article", "br", "caption", "dd", "div", "dl", "dt", "figcaption", "figure"),
    *("footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "nav", "ol", "p"),
    *("pre", "section", "table", "tbody", "td", "text", "th", "thead", "tr", "ul", "svg"),
}


@dataclass
class Element:
    """One element: its tag, its attributes, and its children (elements and text)."""

    tag: str
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def iter(self, tag: str | None = None):
        """This element and every element under it, in document order (``tag``: only those)."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter(tag)

    def _pieces(self, skip: frozenset[str]) -> list[str]:
        if self.tag in skip:
            return []
        pieces = [" "] if self.tag in BREAKS else []
        for child in self.children:
            pieces.extend([child] if isinstance(child, str) else child._pieces(skip))
        return [*pieces, " "] if self.tag in BREAKS else pieces

    def text_without(self, *tags: str) -> str:
        """The visible text, whitespace collapsed, leaving out the elements of ``tags``."""
        joined = "".join(self._pieces(frozenset(HIDDEN | set(tags))))
        return re.sub(r"\s+", " ", joined).strip()

    @property
    def text(self) -> str:
        """The visible text of the element, whitespace collapsed (no attribute, no CSS)."""
        return self.text_without()

    def has_class(self, name: str) -> bool:
        return name in self.attributes.get("class", "").split()


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):  # close up to the matching open element
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


class Page:
    """A parsed page (or fragment). ``text`` is what a reader sees; attributes stay apart."""

    def __init__(self, source: str) -> None:
        builder = _TreeBuilder()
        builder.feed(source)
        builder.close()
        self.root = builder.root

    @classmethod
    def load(cls, path: Path) -> Page:
        return cls(Path(path).read_text(encoding="utf-8"))

    @property
    def text(self) -> str:
        """The visible text of the whole page, whitespace collapsed."""
        return self.root.text

    def text_without(self, *tags: str) -> str:
        """The visible text of the page, leaving out every element of ``tags``."""
        return self.root.text_without(*tags)

    def elements(self, tag: str, cls: str | None = None) -> list[Element]:
        """Every ``tag`` element (with the CSS class ``cls``, if given), in document order."""
        return [e for e in self.root.iter(tag) if cls is None or e.has_class(cls)]

    def texts(self, tag: str, cls: str | None = None) -> list[str]:
        """The visible text of each ``tag`` element."""
        return [e.text for e in self.elements(tag, cls)]

    def count(self, tag: str) -> int:
        """How many ``tag`` elements the page holds."""
        return len(self.elements(tag))

    def attrs(self, tag: str, name: str) -> list[str]:
        """The value of attribute ``name`` on every ``tag`` element that has it."""
        return [e.attributes[name] for e in self.elements(tag) if name in e.attributes]

    def all_attributes(self) -> list[tuple[str, str, str]]:
        """``(tag, attribute, value)`` for every attribute of every element."""
        return [(e.tag, k, v) for e in self.root.iter() for k, v in e.attributes.items()]

    def style_text(self) -> str:
        """The CSS of every ``<style>`` element."""
        return "".join(c for e in self.elements("style") for c in e.children if isinstance(c, str))

    def headings(self) -> list[str]:
        """The text of every heading (h1 to h6), in order."""
        return [e.text for e in self.root.iter() if re.fullmatch(r"h[1-6]", e.tag)]

    def rows(self, table: Element) -> list[list[str]]:
        """The text of each cell (th or td) of each row of ``table``."""
        return [[c.text for c in tr.iter() if c.tag in ("th", "td")] for tr in table.iter("tr")]
