"""Real document files for ingestion tests, written by the tests themselves.

The PDF is hand-assembled (one page per paragraph list, Helvetica text, a correct xref
table), which pypdf reads like any producer's file, and keeps the tests free of a PDF
writer dependency. DOCX files are written by python-docx, the same library that reads them.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["docx_bytes", "html_page", "pdf_bytes", "write_mixed_folder", "zip_bomb_docx"]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: Sequence[Sequence[str]], title: str | None = None) -> bytes:
    """A valid PDF: each page shows its lines top to bottom in 11 pt Helvetica."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, lines in zip(page_ids, pages, strict=True):
        stream = "BT /F1 11 Tf 14 TL 50 780 Td " + " ".join(f"({_escape(line)}) Tj T*" for line in lines) + " ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        data = stream.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
    info = None
    if title:
        objects.append(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
        info = len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out.write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes(title: str, sections: Sequence[tuple[str, str]]) -> bytes:
    """A DOCX with a Heading 1 title and, per section, a Heading 2 and a paragraph."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraph in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(inflated_bytes: int) -> bytes:
    """A valid DOCX whose word/document.xml is one paragraph of `inflated_bytes` zeros (about 1000:1)."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes("Bomb", [])))
    xml = source.read("word/document.xml").decode()
    head = xml.partition("<w:body>")[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, source.read(item))
        with bomb.open("word/document.xml", "w") as member:
            member.write(f"{head}<w:body><w:p><w:r><w:t>".encode())
            zeros = b"0" * (1024 * 1024)
            for _ in range(inflated_bytes // len(zeros)):
                member.write(zeros)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def html_page(title: str, heading: str, paragraphs: Sequence[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title}</title><style>p {{ color: red }}</style>"
        f"<script>var secret = 'not text';</script></head><body><nav>Home | About</nav>"
        f"<h1>{heading}</h1>{body}</body></html>"
    ).encode()


PDF_FACT = "The backup generator in building C is serviced by Voltaris Energy under contract VX-5520."


def write_mixed_folder(folder: Path) -> Path:
    """md, html, pdf and docx files, each with a fact that only it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handbook.md").write_text(
        "# Employee Handbook\n\n## Leave\n\nEvery employee gets 27 days of paid leave a year.\n", encoding="utf-8"
    )
    (folder / "kitchen.html").write_bytes(
        html_page("Kitchen rules", "Kitchen", ["The coffee machine is descaled every Friday by the facilities team."])
    )
    (folder / "facilities.pdf").write_bytes(
        pdf_bytes(
            [["Facilities Report 2024", "", PDF_FACT, "It is tested on the first Monday of each month."]],
            title="Facilities Report",
        )
    )
    (folder / "security.docx").write_bytes(
        docx_bytes("Security Policy", [("Visitors", "Visitors must wear a yellow badge and be escorted at all times.")])
    )
    return folder
