"""The text of documents attached to release pages: PDF (pypdf) and DOCX (its XML), pure functions.

Run in the extraction worker (:mod:`monitor.pages.worker`), bounded in memory and time like a
page. A kind not read here gives None; a broken document raises.
"""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlsplit

import lxml.etree

MAX_PAGES = 500  # of a PDF; a stop list or a treaty runs to a few dozen
MAX_DOCX_XML = 50 * 1024 * 1024  # bytes of word/document.xml once unpacked (a zip bomb stops here)
WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
PDF_TYPES = ("application/pdf", "application/x-pdf")
DOCX_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)


def document_text(content: bytes, content_type: str, url: str) -> str | None:
    """Paragraphs of the document, separated by blank lines; None for a kind not read here."""
    kind = content_type.split(";")[0].strip().lower()
    path = urlsplit(url).path.lower()
    if kind in PDF_TYPES or content.startswith(b"%PDF-") or path.endswith(".pdf"):
        return pdf_text(content)
    if kind in DOCX_TYPES or path.endswith(".docx"):
        return docx_text(content)
    return None


def pdf_text(content: bytes) -> str | None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    pages = [(page.extract_text() or "").strip() for page in reader.pages[:MAX_PAGES]]
    return _joined(pages)


def docx_text(content: bytes) -> str | None:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo("word/document.xml")
        if info.file_size > MAX_DOCX_XML:
            raise ValueError(f"word/document.xml unpacks to {info.file_size} bytes")
        xml = archive.read(info)
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = lxml.etree.fromstring(xml, parser)
    paragraphs = ["".join(node.text or "" for node in p.iter(f"{WORD}t")) for p in root.iter(f"{WORD}p")]
    return _joined(paragraphs)


def _joined(parts: list[str]) -> str | None:
    text = "\n\n".join(" ".join(part.split()) for part in parts if part.strip())
    return text or None
