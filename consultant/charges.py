"""The quota stage: each new case, and each follow-up on plans that count them, is
charged to its account, or held when the period's cases are used up.

consultant/quota.py keeps the ledger; this stage decides for a batch of emails, one at a
time under the accounts' locks taken by ``find_accounts``, and writes the batch's
entries together.
"""

from __future__ import annotations

from consultant import quota
from consultant.intake import Batch, Intake, record_event
from consultant.models import Account, Plan, TicketStatus


def charge(batch: Batch) -> None:
    """Debit each new case from its account's quota, or hold it when none is left; on
    plans where follow-ups count, a follow-up too. The batch's entries go in together."""
    debits = quota.Debits(batch[0].session)
    for intake in batch:
        if intake.deferred:
            continue
        if intake.is_new_ticket:
            charge_case(intake, debits)
        else:
            charge_follow_up(intake, debits)
    debits.write()


def charge_case(intake: Intake, debits: quota.Debits) -> None:
    ticket, account = intake.ticket, intake.account
    if ticket is None or account is None:
        return
    if ticket.status != TicketStatus.NEW:
        return  # held unverified: nothing is charged
    if not debits.charge(account=account, ticket=ticket):
        ticket.status = TicketStatus.HELD_QUOTA
        ticket.due_at = None  # no clock runs on a case the customer has not been charged for
        intake.session.add(ticket)
        record_event(intake, "quota.held", f"{account.address} has no cases left this period")


def charge_follow_up(intake: Intake, debits: quota.Debits) -> None:
    """A customer's email in an open case, on a plan where follow-ups count.

    It still joins its case when the quota is used up — a thread is never split — and
    the overrun is recorded for the admin.
    """
    ticket = intake.ticket
    if ticket is None or ticket.account_id is None or intake.automatic:
        return
    account = intake.session.get(Account, ticket.account_id)
    plan = intake.session.get(Plan, account.plan_id) if account else None
    if account is None or plan is None or not plan.followups_count:
        return
    key = f"debit:inbound:{intake.inbound.id}"
    if not debits.charge(account=account, ticket=ticket, key=key):
        record_event(intake, "quota.follow_up_over", f"{account.address} has no cases left")
