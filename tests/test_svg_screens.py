"""The snapshot comparison: what it lets through and what it catches."""

from __future__ import annotations

from tests.svg_screens import _close, _numbers, differences, same_screen

OLD = (
    '<svg><g clip-path="url(#terminal-123-line-1)"><text x="0" y="1">llm-chat   702 / 1500</text>'
    '<text x="9" y="1" fill="#ff0000">5.5</text></g></svg>'
)


def test_a_last_digit_moved_by_scrape_timing_is_the_same_screen():
    new = OLD.replace("702 /", "705 /").replace(">5.5<", ">5.6<").replace("terminal-123", "terminal-999")
    assert same_screen(OLD, new)


def test_a_value_that_really_changed_is_another_screen():
    assert not same_screen(OLD, OLD.replace("702 /", "950 /"))
    assert not same_screen(OLD, OLD.replace(">5.5<", ">7.5<"))


def test_letters_styles_and_positions_must_match_exactly():
    assert not same_screen(OLD, OLD.replace("llm-chat", "llm-chut"))
    assert not same_screen(OLD, OLD.replace("#ff0000", "#00ff00"))
    assert not same_screen(OLD, OLD.replace('x="9"', 'x="8"'))
    assert not same_screen(OLD, OLD.replace("702 /", "70 /"))


def test_one_unit_of_the_last_digit_is_close_in_binary_floats_too():
    assert _close("8.4", "8.3") and _close("0.9", "0.8") and _close("31.3", "31.2")
    assert not _close("8.4", "8.2") and not _close("0.9", "0.7") and not _close("12", "10")


def test_the_ids_rich_hashes_from_the_text_are_no_numbers_of_the_screen():
    a = '<style>.terminal-2510550142-r1 { fill: #fff }</style><text class="terminal-2510550142-r1">8.4</text>'
    b = a.replace("2510550142", "3264607357").replace(">8.4<", ">8.3<")
    assert "2510550142" not in _numbers(a) and "8.4" in _numbers(a) and same_screen(a, b)


def test_a_failure_names_the_rows_that_differ():
    new = OLD.replace("llm-chat", "llm-chut")
    assert differences(OLD, new) == "row 0: -'llm-chat   702 / 15005.5'\nrow 0: +'llm-chut   702 / 15005.5'"
    assert differences(OLD, OLD.replace("#ff0000", "#00ff00")).startswith("no row differs")
    assert differences(OLD, OLD.replace("702 /", "705 /").replace(">5.5<", ">9.5<")).count("row 0") == 2
    assert differences(OLD, OLD.replace("702 /", "705 /").replace("#ff0000", "#00ff00")).startswith("no row differs")
