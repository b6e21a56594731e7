"""Sandbox contacts: what one holds, and how Brightpearl renders it in a GET and in a ``contact-search`` row.

A new contact's ``updatedOn`` equals its ``createdOn`` (whole seconds, as recorded in search rows); an update
stamps ``updatedOn`` to the millisecond, as the recorded GETs show (``…14:59:22.970-06:00``), so a relay must
not assume Brightpearl's times are whole seconds. The GET keeps Brightpearl's spelling ``createdByid``.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relay.sandbox.orders import whole_second
from relay.sandbox.search import Column, DataType, SearchTable
from relay.sandbox.times import format_in_offset

CONTACT_SEARCH_TABLE = SearchTable(
    columns=(
        Column("contactId", DataType.IDSET),
        Column("primaryEmail", DataType.SEARCH_STRING),
        Column("secondaryEmail", DataType.SEARCH_STRING),
        Column("tertiaryEmail", DataType.SEARCH_STRING),
        Column("firstName", DataType.SEARCH_STRING),
        Column("lastName", DataType.SEARCH_STRING),
        Column("isSupplier", DataType.BOOLEAN, sortable=False),
        Column("companyName", DataType.SEARCH_STRING),
        Column("isStaff", DataType.BOOLEAN, sortable=False),
        Column("isCustomer", DataType.BOOLEAN, sortable=False),
        Column("createdOn", DataType.PERIOD),
        Column("updatedOn", DataType.PERIOD),
        Column("lastContactedOn", DataType.PERIOD),
        Column("lastOrderedOn", DataType.PERIOD),
        Column("nominalCode", DataType.INTEGER),
        Column("isPrimary", DataType.BOOLEAN),
        Column("pri", DataType.STRING, sortable=False),
        Column("sec", DataType.STRING, sortable=False),
        Column("mob", DataType.STRING, sortable=False),
        Column("exactCompanyName", DataType.STRING),
        Column("title", DataType.STRING),
    ),
    id_column="contactId",
)


def whole_millisecond(value: datetime) -> datetime:
    """``value`` in UTC to the millisecond, the precision of an updated contact's ``updatedOn``."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(slots=True)
class SandboxContact:
    """One contact (a customer unless a supplier or staff) and the little of it that changes."""

    id: int
    first_name: str
    last_name: str
    email: str
    created_on: datetime
    updated_on: datetime
    address_id: int  # the default and billing address; delivery is the next id
    company_name: str = ""
    telephone: str = ""
    is_supplier: bool = False
    is_staff: bool = False

    def change(
        self,
        now: datetime,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        company_name: str | None = None,
        telephone: str | None = None,
    ) -> None:
        """Change the fields given; ``updatedOn`` now, to the millisecond."""
        self.first_name = self.first_name if first_name is None else first_name
        self.last_name = self.last_name if last_name is None else last_name
        self.email = self.email if email is None else email
        self.company_name = self.company_name if company_name is None else company_name
        self.telephone = self.telephone if telephone is None else telephone
        self.updated_on = whole_millisecond(now)

    def search_row(self) -> dict[str, Any]:
        """The contact as a ``contact-search`` row, by column name (values as recorded for a web customer)."""
        return {
            "contactId": self.id,
            "primaryEmail": self.email,
            "secondaryEmail": "",
            "tertiaryEmail": "",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "isSupplier": self.is_supplier,
            "companyName": self.company_name,
            "isStaff": self.is_staff,
            "isCustomer": not (self.is_supplier or self.is_staff),
            "createdOn": self.created_on,
            "updatedOn": self.updated_on,
            "lastContactedOn": None,
            "lastOrderedOn": None,
            "nominalCode": 0,
            "isPrimary": False,  # sic: recorded false for primary contacts
            "pri": self.telephone,
            "sec": "",
            "mob": "",
            "exactCompanyName": self.company_name,
            "title": None,
        }


def new_contact(
    contact_id: int, first_name: str, last_name: str, email: str, address_id: int, now: datetime
) -> SandboxContact:
    created = whole_second(now)
    return SandboxContact(contact_id, first_name, last_name, email, created, created, address_id)


def render_contact(contact: SandboxContact, offset_minutes: int) -> dict[str, Any]:
    """The contact as ``GET /contact-service/contact/{id}`` returns it, key for key in the recorded order."""
    return {
        "contactId": contact.id,
        "isPrimaryContact": True,
        "salutation": "",
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "postAddressIds": {"DEF": contact.address_id, "BIL": contact.address_id, "DEL": contact.address_id + 1},
        "communication": {
            "emails": {"PRI": {"email": contact.email}},
            "telephones": {"PRI": contact.telephone} if contact.telephone else {},
            "messagingVoips": {},
            "websites": {},
        },
        "contactStatus": {"current": {"contactStatusId": 0}},
        "relationshipToAccount": {"isSupplier": contact.is_supplier, "isStaff": contact.is_staff},
        "marketingDetails": {"isReceiveEmailNewsletter": True},
        "financialDetails": {
            "priceListId": 2,
            "nominalCode": "0",
            "creditLimit": 0,
            "creditTermDays": 0,
            "currencyId": 2,
            "discountPercentage": 0.0,
            "creditTermTypeId": 1,
        },
        "assignment": {"current": {}},
        "organisation": {"organisationId": contact.id},
        "tradeStatus": "UNKNOWN",
        "createdByid": 0,  # sic, as recorded
        "createdOn": format_in_offset(contact.created_on, offset_minutes),
        "updatedOn": format_in_offset(contact.updated_on, offset_minutes),
        "contactTags": "",
        "aliases": {},
        "companyId": 0,
    }
