"""Contacts over real HTTP, compared with recorded Brightpearl answers: search, GET with pagination, 404 for none."""

from typing import Any

import pytest

from tests.sandbox.conftest import Client, WallClock
from tests.sandbox.recordings import load, shape

SEARCH = load("customer__search__simple_search.yml.0.txt")
SIMPLE = load("customer__get__simple_get.yml.0.txt")
MULTIPLE = load("customer__get__multiple_get.yml.0.txt")
EMPTY = load("customer__get__empty_not_found.yml.0.txt")
BUSINESS = {"email": "foo@business.com", "company_name": "TEST COMPANY", "telephone": "88888899"}


async def contacts(client: Client, count: int = 1, **extra: Any) -> list[int]:
    return list((await client.ok("POST", "/contacts", {"count": count, **extra}, 201))["ids"])


async def test_contact_search_has_the_recorded_structure(client: Client) -> None:
    ids = await contacts(client, 2, first_name="TEST", last_name="Factura Business", **BUSINESS)
    await contacts(client, 1, email="someone@else.com")
    reply = await client.bp("GET", "contact-service/contact-search", params={"primaryEmail": "foo@business.com"})
    assert (reply.status, reply.headers["Message-Type"]) == (200, SEARCH.message_type)
    body, recorded = reply.body, SEARCH.body
    assert list(body) == list(recorded)
    meta, recorded_meta = body["response"]["metaData"], recorded["response"]["metaData"]
    assert list(meta) == list(recorded_meta)
    assert meta["columns"] == recorded_meta["columns"]
    assert meta["sorting"] == recorded_meta["sorting"]
    assert {k: meta[k] for k in list(meta)[:5]} == {k: recorded_meta[k] for k in list(meta)[:5]}
    results = body["response"]["results"]
    assert [row[0] for row in results] == ids
    names = [column["name"] for column in meta["columns"]]
    for row, recorded_row in zip(results, recorded["response"]["results"], strict=True):
        assert [type(value) for value in row] == [type(value) for value in recorded_row]
        ours = {n: v for n, v in zip(names, row, strict=True) if n not in ("contactId", "createdOn", "updatedOn")}
        theirs = {
            n: v for n, v in zip(names, recorded_row, strict=True) if n not in ("contactId", "createdOn", "updatedOn")
        }
        assert ours == theirs | {"pri": "88888899"}
        assert row[10] == row[11] == "2026-11-26T04:00:00.000-06:00"  # a new contact: updatedOn is createdOn
    assert body["reference"] == recorded["reference"] == {}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"firstName": "ann"}, [0, 2]),
        ({"lastName": "Smith", "firstName": "Anna"}, [2]),
        ({"companyName": "acme"}, [1]),
        ({"exactCompanyName": "Acme"}, []),  # exact: "Acme Ltd" only
        ({"isCustomer": "true"}, [0, 1, 2]),
        ({"isSupplier": "true"}, []),
        ({"updatedOn": "2026-11-26T10:00:05Z/"}, [1]),
        ({"contactId": "{1}-{2}", "sort": "contactId.DESC"}, [2, 1]),
    ],
)
async def test_contact_search_filters(
    client: Client, wall_clock: WallClock, params: dict[str, str], expected: list[int]
) -> None:
    ids = await contacts(client, first_name="Ann", last_name="Jones")
    ids += await contacts(client, first_name="Bob", last_name="Jones", company_name="Acme Ltd")
    ids += await contacts(client, first_name="Anna", last_name="Smith")
    wall_clock.advance(5.5)
    await client.ok("PATCH", f"/contacts/{ids[1]}", {"telephone": "555"})
    rows = await client.rows("contact-service/contact-search", **{k: v.format(*ids) for k, v in params.items()})
    assert [row["contactId"] for row in rows] == [ids[i] for i in expected]


async def test_a_contact_has_the_recorded_shape(client: Client) -> None:
    (contact_id,) = await contacts(client, first_name="john", last_name="Doe", email="test@gmail.com", telephone="1")
    reply = await client.bp("GET", f"contact-service/contact/{contact_id}")
    assert (reply.status, reply.headers["Message-Type"]) == (200, SIMPLE.message_type)
    assert list(reply.body) == ["response", "pagination", "sorting"]
    assert shape(reply.body) == shape(SIMPLE.body)
    (contact,) = reply.body["response"]
    assert list(contact) == list(SIMPLE.body["response"][0])
    assert contact["createdByid"] == 0  # sic
    assert contact["communication"]["emails"] == {"PRI": {"email": "test@gmail.com"}}
    assert contact["postAddressIds"]["DEL"] == contact["postAddressIds"]["DEF"] + 1
    assert reply.body["pagination"] == SIMPLE.body["pagination"]
    assert reply.body["sorting"] == SIMPLE.body["sorting"]


async def test_several_contacts_in_id_order_without_unknown_ids(client: Client) -> None:
    ids = await contacts(client, 3, telephone="1")
    reply = await client.bp("GET", f"contact-service/contact/{ids[2]},{ids[0]},5")
    assert [contact["contactId"] for contact in reply.body["response"]] == [ids[0], ids[2]]
    assert reply.body["pagination"] == MULTIPLE.body["pagination"]  # two found: 1 to 2
    assert shape(reply.body) == shape(MULTIPLE.body)


async def test_no_contact_found_is_the_recorded_404(client: Client) -> None:
    await contacts(client)
    reply = await client.bp("GET", "contact-service/contact/1")
    assert (reply.status, reply.body) == (EMPTY.status, EMPTY.body)
    assert reply.headers["Message-Type"] == EMPTY.message_type == "get-contact"


async def test_contacts_come_a_page_at_a_time(client: Client) -> None:
    ids = await contacts(client, 250)
    id_set = f"{ids[0]}-{ids[-1]}"
    first = await client.get(f"contact-service/contact/{id_set}")
    assert len(first["response"]) == 200
    assert first["pagination"] == {
        "morePagesAvailable": True,
        "resultsReturned": 200,
        "firstResult": 1,
        "lastResult": 200,
    }
    rest = await client.get(f"contact-service/contact/{id_set}", firstResult="201")
    assert [c["contactId"] for c in rest["response"]] == ids[200:]
    assert rest["pagination"]["morePagesAvailable"] is False
    newest = await client.get(f"contact-service/contact/{id_set}", sort="contactId.DESC", pageSize="3")
    assert [c["contactId"] for c in newest["response"]] == ids[:-4:-1]
    assert newest["sorting"] == [{"field": "contactId", "direction": "DESC"}]
    bad = await client.bp("GET", f"contact-service/contact/{id_set}", params={"sort": "lastName.ASC"})
    assert bad.status == 500


async def test_changing_a_contact_stamps_updated_on_to_the_millisecond(client: Client, wall_clock: WallClock) -> None:
    (contact_id,) = await contacts(client)
    wall_clock.advance(12.9704)
    changed = await client.ok("PATCH", f"/contacts/{contact_id}", {"first_name": "Jo", "email": "jo@x.com"})
    assert changed == {"id": contact_id, "updated_on": "2026-11-26T10:00:12.970Z"}
    (contact,) = (await client.get(f"contact-service/contact/{contact_id}"))["response"]
    assert (contact["firstName"], contact["updatedOn"]) == ("Jo", "2026-11-26T04:00:12.970-06:00")
    assert contact["createdOn"] == "2026-11-26T04:00:00.000-06:00"
    assert contact["communication"]["emails"]["PRI"]["email"] == "jo@x.com"
    rows = await client.rows("contact-service/contact-search", updatedOn="2026-11-26T10:00:12.970Z/")
    assert [row["contactId"] for row in rows] == [contact_id]


BAD_INPUT: list[tuple[str, str, Any, int]] = [
    ("POST", "/contacts", {"count": 0}, 400),
    ("POST", "/contacts", {"email": ""}, 400),
    ("POST", "/contacts", {"nickname": "x"}, 400),
    ("PATCH", "/contacts/1001", {}, 400),
    ("PATCH", "/contacts/1001", {"first_name": ""}, 400),
    ("PATCH", "/contacts/5", {"first_name": "x"}, 404),
    ("PATCH", "/contacts/x", {"first_name": "x"}, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_INPUT)
async def test_bad_contact_input_is_a_4xx(client: Client, method: str, path: str, body: Any, status: int) -> None:
    await contacts(client)
    reply = await client.control(method, f"/accounts/acme{path}", body)
    assert reply.status == status, reply.text
    assert reply.body["error"]
