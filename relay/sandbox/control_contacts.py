"""The control API's contacts: making customers and changing their names, email, company and telephone."""

from aiohttp import web
from pydantic import Field

from relay.sandbox.control_requests import ControlBody, account_of, made, nothing_to_change, path_id, read_body
from relay.sandbox.times import format_utc


class NewContacts(ControlBody):
    count: int = Field(1, ge=1, le=100_000)
    first_name: str | None = Field(None, min_length=1)
    last_name: str = Field("Customer", min_length=1)
    email: str | None = Field(None, min_length=1)
    company_name: str = ""
    telephone: str = ""


class ContactChange(ControlBody):
    first_name: str | None = Field(None, min_length=1)
    last_name: str | None = Field(None, min_length=1)
    email: str | None = Field(None, min_length=1)
    company_name: str | None = None
    telephone: str | None = None


async def create_contacts(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, NewContacts)
    contacts = account.create_contacts(
        body.count,
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email,
        company_name=body.company_name,
        telephone=body.telephone,
    )
    return made(contacts)


async def list_contacts(request: web.Request) -> web.Response:
    return web.json_response({"ids": list(account_of(request).contacts)})


async def change_contact(request: web.Request) -> web.Response:
    account = account_of(request)
    contact_id = path_id(request, "contact_id", "contact")
    body = await read_body(request, ContactChange)
    nothing_to_change(body)
    contact = account.change_contact(contact_id, **body.model_dump(exclude_unset=True))
    return web.json_response({"id": contact.id, "updated_on": format_utc(contact.updated_on)})
