from gateway.engine.answer.text_stream import TextStream


def test_character_split_across_tokens_is_held_until_complete() -> None:
    stream = TextStream([])
    llama = "🦙".encode()
    assert [stream.push(llama[i : i + 1]) for i in range(4)] == ["", "", "", "🦙"]


def test_character_cut_by_the_end_is_dropped_not_replaced() -> None:
    stream = TextStream([])
    assert stream.push(b"ok " + "🦙".encode()[:2]) == "ok "
    assert stream.flush() == ""


def test_stop_string_spanning_tokens_is_never_sent() -> None:
    stream = TextStream(["END"])
    sent = [stream.push(b"abc E"), stream.push(b"N"), stream.push(b"D tail")]
    assert "".join(sent) == "abc "
    assert stream.stopped


def test_held_prefix_is_released_when_it_is_not_a_stop() -> None:
    stream = TextStream(["END"])
    assert stream.push(b"abc EN") == "abc "
    assert stream.push(b"X") == "ENX"
    assert not stream.stopped


def test_earliest_of_several_stops_wins() -> None:
    stream = TextStream(["zz", "b"])
    assert stream.push(b"a zz b") == "a "


def test_flush_releases_held_partial_stop() -> None:
    stream = TextStream(["END"])
    assert stream.push(b"x E") == "x "
    assert stream.flush() == "E"
