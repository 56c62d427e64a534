"""Person pages of every era: the name and the primary photo fall back through every
structured signal the page carries.

The pages are the real ones in ../shared/imdb-pages/real, turned into the markup of
older eras by editing only the person header and the photo element (the rest of each
page, its head and scripts, stays real): 2010-13 put ``itemprop=name`` on the header
itself and the photo in ``td#img_primary`` with ``._V1._SY317_`` URLs; 2006-10 used
``#tn15title h1`` and a "headshot" link.
"""

from __future__ import annotations

import re

import pytest

from mpds_pipeline.imdb.page_data import CDN_IMAGE_BASE
from mpds_pipeline.imdb.parsing import parse_page
from mpds_pipeline.imdb.records import ParseError, PersonRecord

WILLIS_KEY = "MV5BMjA0MjMzMTE5OF5BMl5BanBnXkFtZTcwMzQ2ODE3Mw@@"
WILLIS_HEADER = b'<h1 class="header"> <span class="itemprop" itemprop="name">Bruce Willis</span>'
WILLIS_POSTER_SRC = f"http://ia.media-imdb.com/images/M/{WILLIS_KEY}._V1_SY317_CR27,0,214,317_AL_.jpg".encode()


@pytest.fixture(scope="module")
def real(shared_dir):
    folder = shared_dir / "imdb-pages" / "real"
    return {name: (folder / f"{name}.html").read_bytes() for name in ("nm0000246", "nm0000434", "nm1212722")}


def _replace(page: bytes, old: bytes, new: bytes) -> bytes:
    assert page.count(old) == 1, f"{old[:60]!r} is not in the page exactly once"
    return page.replace(old, new)


def _without_page_wide_image(page: bytes) -> bytes:
    page = re.sub(rb"<meta[^>]*og:image[^>]*>", b"", page)
    return re.sub(rb"<link[^>]*image_src[^>]*>", b"", page)


def _person(page: bytes) -> PersonRecord:
    record = parse_page(page, kind="person")
    assert isinstance(record, PersonRecord), record
    return record


def test_2010_header_with_itemprop_on_itself_and_img_primary_with_old_url_form(real):
    page = _replace(
        real["nm0000246"],
        WILLIS_HEADER,
        b'<h1 class="header" itemprop="name">Bruce Willis<span class="nobr">(I)</span>',
    )
    page = _replace(page, b'<img id="name-poster"', b"<img")
    page = _replace(page, WILLIS_POSTER_SRC, f"http://ia.media-imdb.com/images/M/{WILLIS_KEY}._V1._SY317_.jpg".encode())
    page = _without_page_wide_image(page)  # the photo can only come from td#img_primary
    record = _person(page)
    assert record.name == "Bruce Willis"
    assert record.image_url == f"{CDN_IMAGE_BASE}{WILLIS_KEY}._V1_.jpg"  # today's host, same key
    assert record.professions == ["actor", "soundtrack", "producer"]


def test_2006_tn15_header_and_headshot_link(real):
    # The real page's head and scripts, with the 2006-10 header and photo markup as the body.
    head = real["nm0000246"].split(b"<body", 1)[0]
    body = (
        f'<body><div id="tn15title"><h1>Bruce Willis <span>(I)</span></h1></div>'
        f'<div class="photo"><a name="headshot" href="/rg/action-box-name/primary-photo/media/rm1/nm0000246">'
        f'<img src="http://ia.media-imdb.com/images/M/{WILLIS_KEY}._V1._SX100_SY140_.jpg"></a></div>'
        "</body></html>"
    ).encode()
    record = _person(_without_page_wide_image(head) + body)
    assert record.name == "Bruce Willis"
    assert record.image_url == f"{CDN_IMAGE_BASE}{WILLIS_KEY}._V1_.jpg"  # today's host, same key


def test_name_from_og_title_then_title_tag_when_the_header_is_gone(real):
    # Mobile page: og:title is "Benedict Cumberbatch", <title> "Benedict Cumberbatch - IMDb".
    page = re.sub(rb"<h1>\s*Benedict Cumberbatch\s*</h1>", b"<h1></h1>", real["nm1212722"])
    assert _person(page).name == "Benedict Cumberbatch"
    page = re.sub(rb"<meta[^>]*og:title[^>]*>", b"", page)
    assert _person(page).name == "Benedict Cumberbatch"


def test_og_title_site_suffix_is_cut_and_og_image_replaces_a_local_src(real):
    # Browser-saved page without its JSON-LD: og:title reads "Mark Hamill - IMDb" and
    # img#name-poster points at a local file, so the photo comes from og:image.
    page = re.sub(rb'<script type="application/ld\+json">.*?</script>', b"", real["nm0000434"], flags=re.S)
    page = _replace(page, b'<span class="itemprop">Mark Hamill</span>', b"")
    record = _person(page)
    assert record.name == "Mark Hamill"
    assert "/images/M/MV5BOGY2MjI5MDQt" in record.image_url and record.image_url.endswith("._V1_.jpg")


def test_no_name_signal_at_all_is_an_error_naming_what_was_looked_for(real):
    page = _replace(real["nm0000246"], WILLIS_HEADER, b'<h1 class="header">')
    page = re.sub(rb"<meta[^>]*og:title[^>]*>", b"", page)
    page = re.sub(rb"<title>[^<]*</title>", b"<title>IMDb</title>", page)
    result = parse_page(page, kind="person")
    assert isinstance(result, ParseError)
    assert "no person name" in result.error and "og:title" in result.error and "<title>" in result.error


def test_page_wide_image_is_not_taken_for_a_page_without_a_photo(real):
    # No photo element and no JSON-LD: og:image/image_src may name anything, so no photo.
    page = re.sub(rb'<td rowspan="2" id="img_primary">.*?</td>', b"", real["nm0000246"], flags=re.S)
    record = _person(page)
    assert record.name == "Bruce Willis" and record.image_url is None


def _job_categories(page: bytes) -> tuple[int, int]:
    """The span of the 2014 page's ``div#name-job-categories`` element."""
    start = page.index(b'<div class="infobar" id="name-job-categories">')
    return start, page.index(b"</div>", start) + len(b"</div>")


def _with_job_categories(page: bytes, markup: bytes) -> bytes:
    start, end = _job_categories(page)
    return page[:start] + markup + page[end:]


def test_2012_job_titles_on_links_with_itemprop_inside_div_infobar(real):
    # 2011-12: the job titles are the links themselves (no span, no #name-job-categories).
    page = _with_job_categories(
        real["nm0000246"],
        b'<div class="infobar">\n<a href="#actor" itemprop="jobTitle">Actor</a> <span class="ghost">|</span>\n'
        b'<a href="#soundtrack" itemprop="jobTitle">Soundtrack</a> <span class="ghost">|</span>\n'
        b'<a href="#producer" itemprop="jobTitle">Producer</a>\n</div>',
    )
    record = _person(page)
    assert record.professions == ["actor", "soundtrack", "producer"] and record.is_actor


def test_job_title_links_without_anchor_are_read_by_their_text(real):
    page = _with_job_categories(
        real["nm0000246"],
        b'<div class="infobar"><a href="/search/name?job_type=actor" itemprop="jobTitle">Actor</a> | '
        b'<a href="/search/name?job_type=music_department" itemprop="jobTitle">Music Department</a></div>',
    )
    assert _person(page).professions == ["actor", "music_department"]


def test_2010_infobar_links_to_filmography_sections_without_itemprop(real):
    # Late 2010, before microdata: plain links to the filmography sections; a link to
    # elsewhere in the infobar (IMDbPro) is no job title.
    page = _with_job_categories(
        real["nm0000246"],
        b'<div class="infobar"><a href="#actress">Actress</a> | <a href="#director">Director</a> '
        b'<a href="http://pro.imdb.com/name/nm0000246/">More at IMDbPro</a></div>',
    )
    record = _person(page)
    assert record.professions == ["actress", "director"] and record.is_actor


def test_filmography_sections_when_the_page_shows_no_job_titles(real):
    # 2013+ filmography heads (div#filmo-head-actor) are read when the header line is gone;
    # Thanks, Self and Archive Footage are sections, not professions.
    start, end = _job_categories(real["nm0000246"])
    page = real["nm0000246"][:start] + real["nm0000246"][end:]
    page = re.sub(rb'<script type="application/ld\+json">.*?</script>', b"", page, flags=re.S)
    record = _person(page)
    assert record.professions == ["actor", "soundtrack", "producer", "writer", "music_department", "miscellaneous"]


def test_bio_page_takes_its_headshot_from_og_image(real):
    # /name/nm…/bio shows no photo element: og:image is the headshot, and the name sits
    # in the sub-page title block, the <h1> reading "Mini Bio (1)".
    head = real["nm0000246"].split(b"<body", 1)[0]
    head = head.replace(b"http://www.imdb.com/name/nm0000246/", b"http://www.imdb.com/name/nm0000246/bio")
    head = re.sub(
        rb"<meta[^>]*og:title[^>]*>", b"<meta property='og:title' content=\"Bruce Willis - Biography\" />", head
    )
    body = (
        b'<body><div class="subpage_title_block"><div class="parent"><h3 itemprop="name">'
        b'<a href="/name/nm0000246/?ref_=nmbio_bio_nm">Bruce Willis</a></h3></div>'
        b'<h1 class="header">Mini Bio (1)</h1></div><div class="jumpto">Jump to: <a href="#overview">Overview (3)'
        b'</a> | <a href="#mini_bio">Mini Bio (1)</a> | <a href="#trivia">Trivia (56)</a></div>'
        b'<div class="soda odd"><p>Actor and producer.</p></div></body></html>'
    )
    record = _person(head + body)
    assert record.id == 246 and record.name == "Bruce Willis"
    assert record.professions == []  # the bio's "Jump to" links are no filmography
    assert record.image_url == f"{CDN_IMAGE_BASE}{WILLIS_KEY}._V1_.jpg"
    # Without the title block the og:title's sub-page word is cut from the name.
    record = _person(head + b"<body><h1>Mini Bio</h1></body></html>")
    assert record.name == "Bruce Willis"
    # Without a canonical link (the id from og:url), the title still says it is the bio.
    bare = re.sub(rb'<link rel="canonical"[^>]*>', b"", head)
    bare = re.sub(
        rb"<meta[^>]*og:url[^>]*>", b"<meta property='og:url' content='http://www.imdb.com/name/nm0000246/'>", bare
    )
    record = _person(bare + body)
    assert record.image_url == f"{CDN_IMAGE_BASE}{WILLIS_KEY}._V1_.jpg"
