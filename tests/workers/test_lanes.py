"""Ready deliveries queued by receiver: no receiver gets more attempts under way than its connections."""

from workers.lanes import Lanes, origin


def test_an_origin_is_scheme_host_and_port() -> None:
    assert origin("https://Hooks.Example.com/a/b?c=1") == "https://hooks.example.com"
    assert origin("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080"
    assert origin("http://127.0.0.1:8080/other") == origin("http://127.0.0.1:8080/hook")
    assert origin("http://localhost:8080/hook") != origin("http://127.0.0.1:8080/hook")
    assert origin("not a url") == "not a url"  # the attempt itself says what is wrong with it


def test_no_origin_gets_more_under_way_than_its_share() -> None:
    lanes: Lanes[str] = Lanes(per_origin=2)
    for n in range(5):
        lanes.add("a", f"a{n}")
    lanes.add("b", "b0")
    assert lanes.take(10) == [("a", "a0"), ("a", "a1"), ("b", "b0")]
    assert (lanes.busy("a"), lanes.busy("b"), len(lanes)) == (2, 1, 3)
    assert lanes.take(10) == []  # a is at its share, b has nothing waiting
    lanes.done("a")
    assert lanes.take(10) == [("a", "a2")]  # oldest first
    assert list(lanes) == ["a3", "a4"]


def test_room_limits_how_many_start_and_origins_are_served_in_turn() -> None:
    lanes: Lanes[str] = Lanes(per_origin=10)
    for name in ("a", "b", "c"):
        lanes.add(name, f"{name}0")
    assert lanes.take(2) == [("a", "a0"), ("b", "b0")]
    lanes.add("a", "a1")  # a began waiting again: behind c
    assert lanes.take(5) == [("c", "c0"), ("a", "a1")]
    assert len(lanes) == 0


def test_clear_gives_back_everything_waiting_and_keeps_what_is_under_way() -> None:
    lanes: Lanes[str] = Lanes(per_origin=1)
    for item in ("x", "y", "z"):
        lanes.add("a", item)
    assert lanes.take(5) == [("a", "x")]
    assert lanes.clear() == ["y", "z"]
    assert (len(lanes), lanes.busy("a")) == (0, 1)
    lanes.done("a")
    assert lanes.busy("a") == 0
