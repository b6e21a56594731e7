"""A sandbox account's contacts: looking them up, making customers (each with two addresses) and changing them."""

from relay.sandbox.account_errors import UnknownContact
from relay.sandbox.account_state import AccountState
from relay.sandbox.contacts import SandboxContact, new_contact


class AccountContacts(AccountState):
    """What an account does with its contacts."""

    def contact(self, contact_id: int) -> SandboxContact:
        """The contact with this id; :class:`UnknownContact` if there is none."""
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise UnknownContact(f"contact {contact_id} does not exist in account {self.code}") from None

    def create_contacts(
        self,
        count: int = 1,
        *,
        first_name: str | None = None,
        last_name: str = "Customer",
        email: str | None = None,
        company_name: str = "",
        telephone: str = "",
    ) -> list[SandboxContact]:
        """``count`` new customers made now (``updatedOn`` equal to ``createdOn``), each with two addresses."""
        now = self.now()
        made = []
        for _ in range(count):
            contact_id = self._next_contact_id
            contact = new_contact(
                contact_id,
                first_name or f"Contact {contact_id}",
                last_name,
                email or f"contact{contact_id}@example.com",
                self._next_address_id,
                now,
            )
            contact.company_name, contact.telephone = company_name, telephone
            self.contacts[contact_id] = contact
            self._next_contact_id += 1
            self._next_address_id += 2
            made.append(contact)
        self._hint("contact.created", (contact.id for contact in made))
        return made

    def change_contact(self, contact_id: int, **fields: str | None) -> SandboxContact:
        """Change a contact's ``first_name``, ``last_name``, ``email``, ``company_name`` or ``telephone``;
        ``updatedOn`` now, to the millisecond."""
        contact = self.contact(contact_id)
        contact.change(self.now(), **fields)
        self._hint("contact.modified", [contact_id])
        return contact
