"""Origination (seed §3.1-3.5): intake review → risk review (``Reviews``) → product matching
(``Matching``) → offer confirmation → contract signing → disbursement, then continue-as-new into
servicing on the same workflow id. Each stage is one short method; every human step goes
through ``HumanTasks``. Seam: the bank payout becomes a child workflow where ``disburse`` is
called.

Deterministic code only.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ContractActivities
    from activities.disbursement import DisbursementActivities
    from activities.payout import PayoutActivities
    from domain.allocation import InstallmentBalance, balances_from_schedule
    from domain.identifiers import (
        DECIDE_UPDATE,
        ORIGINATION_WORKFLOW,
        PAYMENT_UPDATE,
        SIGN_UPDATE,
        STATE_QUERY,
        WITHDRAW_UPDATE,
        contract_no_for,
    )
    from domain.lifecycle import Stage
    from domain.payout import (
        PAYOUT_PATCH,
        OrderState,
        PrecheckResult,
        needs_manager,
        payout_workflow_id,
        start_date_of,
    )
    from domain.permissions import Action, is_allowed
    from domain.signing import LENDER_SEAL_PATCH
    from domain.tasks import (
        Party,
        SealRefusalData,
        TaskKind,
        TaskStatus,
    )
    from models.shapes import (
        BookLoanInput,
        ContractInfo,
        ContractInput,
        DecisionRequest,
        DecisionResult,
        DisburseInput,
        FundsInput,
        LedgerState,
        LoanInput,
        LoanView,
        Offer,
        OpenTask,
        OrderInput,
        PaymentRequest,
        PaymentResult,
        PayoutInput,
        PrecheckInput,
        RecordPayoutInput,
        ReleasePayoutInput,
        SealInput,
        ServicingInput,
        SignatureInput,
        SignRequest,
        TasksState,
        WithdrawRequest,
    )
    from workflows.common import (
        ANSWER_PATCH,
        DB_WRITE,
        EXTERNAL_HTTP,
        POLL,
        RENDER,
        Ended,
        LoanProgress,
        business_refusal,
        on_render_queue,
        refuse,
    )
    from workflows.human_tasks import HumanTasks
    from workflows.matching import Matching
    from workflows.payout import PayoutWorkflow
    from workflows.reviews import Reviews
    from workflows.servicing import ServicingWorkflow


@workflow.defn(name=ORIGINATION_WORKFLOW)
class OriginationWorkflow:
    @workflow.init
    def __init__(self, inp: LoanInput) -> None:
        self._inp = inp
        self._p = LoanProgress(inp.application_no, inp.policy, Stage.INTAKE_REVIEW, 0)
        self._tasks = HumanTasks(
            self._p, TasksState(deciders={Party.SUBMITTER.value: inp.submitted_by})
        )
        self._withdrawal: WithdrawRequest | None = None
        self._offer: Offer | None = None
        self._contract: ContractInfo | None = None
        self._signed = False
        # The borrower asked for other terms at the offer: the officer's comment, for the round.
        self._other_terms: DecisionRequest | None = None
        # A signature is being recorded (two accepted at once: the second is refused).
        self._signing = False
        # The borrower signed and the lender's seal is awaited (loans from lender-seal-v1 on).
        self._sealing = False
        self._reviews = Reviews(self._p, self._tasks, self._withdrawn, inp.requested_amount)
        self._matching = Matching(self._p, self._tasks, self._withdrawn, inp, self._reviews)

    @workflow.run
    async def run(self, inp: LoanInput) -> str:
        try:
            await self._p.enter(Stage.INTAKE_REVIEW, actor=inp.submitted_by)
            await self._reviews.intake()
            while not await self._reviews.risk():  # more information: back to intake
                await self._reviews.intake()
            while True:  # other terms asked at the offer: a new matching round
                again, self._other_terms = self._other_terms, None
                self._offer = await self._matching.match(again)
                if await self._offer_confirmation():
                    break
            await self._contract_signing()
            start_date, installments = await self._disbursement()
        except Ended as end:
            self._p.moving_to = end.stage  # a decision that ended it answers with the end
            status = TaskStatus.EXPIRED if end.stage == Stage.EXPIRED else TaskStatus.CANCELLED
            await self._tasks.close_all(status)
            await self._p.enter(end.stage, actor=end.actor, reason=end.reason)
            self._p.resting = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            return end.stage.value
        self._p.resting = True
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and self._tasks.busy == 0
        )
        workflow.continue_as_new(
            ServicingInput(
                application_no=inp.application_no,
                policy=inp.policy,
                offer=self._terms_offer(),
                contract=self._signed_contract(),
                start_date=start_date,
                ledger=LedgerState(installments=installments),
                tasks=self._tasks.snapshot(),
                stage_seq=self._p.seq,
            ),
            workflow=ServicingWorkflow.run,
        )

    # ---- the stages ----------------------------------------------------------------------------

    def _withdrawn(self) -> Ended | None:
        w = self._withdrawal
        if w is None:
            return None
        return Ended(Stage.WITHDRAWN, w.reason or "withdrawn", actor=w.user)

    async def _offer_confirmation(self) -> bool:
        """True when the borrower accepts; False when they ask for other terms (a new
        matching round); ends the loan when they decline or the offer expires."""
        await self._p.enter(Stage.OFFER_CONFIRMATION)
        confirm = await self._tasks.decide(
            TaskKind.OFFER_CONFIRMATION,
            abort=self._withdrawn,
            expires_after=timedelta(days=self._p.policy.offer_valid_days),
        )
        if confirm.decision == "decline":
            raise Ended(
                Stage.WITHDRAWN, confirm.comment or "the borrower declined the offer", confirm.user
            )
        if confirm.decision == "other_terms":
            self._other_terms = confirm
            self._offer = None
            return False
        return True

    async def _contract_signing(self) -> None:
        await self._p.enter(Stage.CONTRACT_SIGNING)
        try:
            self._contract = await workflow.execute_activity_method(
                ContractActivities.prepare_contract,
                ContractInput(
                    application_no=self._inp.application_no,
                    contract_no=contract_no_for(self._inp.application_no),
                    offer=self._terms_offer(),
                    contract_date=self._p.today(),
                    penalty_multiple=self._terms_offer().penalty(self._p.policy).multiple,
                    at=workflow.now(),
                    penalty_grace_days=self._p.policy.penalty_grace_days,
                    language=self._inp.contract_language,
                ),
                **on_render_queue(RENDER),
            )
        except ActivityError as exc:
            # A contract that must not be issued (a prohibited purpose) ends the application
            # with the reasons; it never fails the workflow.
            refusal = business_refusal(exc)
            if refusal is None:
                raise
            raise Ended(Stage.REJECTED, "; ".join(refusal.reasons)) from None
        try:
            await self._p.rest(
                lambda: self._signed or self._withdrawal is not None,
                at_most=timedelta(days=self._p.policy.contract_sign_days),
            )
        except TimeoutError:
            raise Ended(Stage.EXPIRED, "the contract was not signed in time") from None
        if (end := self._withdrawn()) is not None:
            raise end
        if workflow.patched(LENDER_SEAL_PATCH):
            await self._lender_seal()

    async def _lender_seal(self) -> None:
        """The lender's authorized signatory countersigns the contract the borrower signed; only
        then is it in force and may the money go out. A refusal (with its reason) ends the
        application REJECTED: the borrower's signature alone binds no one."""
        contract = self._signed_contract()
        self._sealing = True
        seal = await self._tasks.decide(
            TaskKind.LENDER_SEAL,
            abort=self._withdrawn,
            context={"contract_no": contract.contract_no, "document_id": contract.document_id},
        )
        reason = SealRefusalData.parse(seal.data).reason if seal.decision == "refuse" else None
        # Once the seal is recorded: the payout, or the end.
        self._p.moving_to = Stage.REJECTED if reason is not None else Stage.DISBURSEMENT
        await workflow.execute_activity_method(
            ContractActivities.record_seal,
            SealInput(
                application_no=self._inp.application_no,
                document_id=contract.document_id,
                decision=seal.decision,
                user=seal.user,
                at=workflow.now(),
                reason=reason,
            ),
            **DB_WRITE,
        )
        if reason is not None:
            raise Ended(
                Stage.REJECTED, f"the lender refused to seal the contract: {reason}", seal.user
            )

    async def _disbursement(self) -> tuple[date, tuple[InstallmentBalance, ...]]:
        await self._p.enter(Stage.DISBURSEMENT)
        if workflow.patched(PAYOUT_PATCH):
            return await self._payout()
        return await self._disbursement_before_payout()

    async def _payout(self) -> tuple[date, tuple[InstallmentBalance, ...]]:
        """Tiered four-eyes, the pre-check list with the funds reserved, then the bank order in
        a child workflow (``workflows.payout``); the loan starts on the bank's value date.

        An operations specialist requests the payout (the ``disbursement`` task, maker); a
        second one authorizes it (checker: neither the maker nor the intake reviewer); above
        ``policy.disbursement_dual_limit`` the department manager authorizes too. Then the
        pre-check: a failed item opens ``disbursement_refused`` with the reasons (retry once
        fixed, or reject); a pool that cannot cover the payout makes it wait
        (``disbursement_awaiting_funds``, re-checked every ``policy.funds_recheck_minutes``);
        a bank rejection opens ``disbursement_refused`` with the bank's reason and a retry
        uses a new order key. Nothing here fails the workflow."""
        terms = self._terms_offer().terms
        context = {"amount": str(terms.payout), "contract_no": self._signed_contract().contract_no}
        request = await self._tasks.decide(TaskKind.DISBURSEMENT, context=context)
        if request.decision == "reject":
            raise Ended(Stage.REJECTED, request.comment or "disbursement refused", request.user)
        authorized: list[str] = []
        tiers = [TaskKind.DISBURSEMENT_AUTHORIZATION]
        if needs_manager(terms.payout, self._p.policy.disbursement_dual_limit):
            tiers.append(TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION)
        for kind in tiers:
            auth = await self._tasks.decide(kind, context=context)
            if auth.decision == "reject":
                raise Ended(
                    Stage.REJECTED, auth.comment or "the payout was not authorized", auth.user
                )
            authorized.append(auth.user)
        attempt = 1
        while True:
            check = await self._precheck(attempt, request.user, tuple(authorized))
            if check is None:
                continue  # funds arrived after a wait: check everything again
            outcome = await workflow.execute_child_workflow(
                PayoutWorkflow.run,
                PayoutInput(
                    self._inp.application_no, check.order_key, check.amount, self._p.policy
                ),
                id=payout_workflow_id(check.order_key),
            )
            if outcome.state == OrderState.EXECUTED.value:
                break
            what = {
                OrderState.REJECTED.value: f"the bank rejected the payment order "
                f"({outcome.reason_code}: {outcome.reason})",
                OrderState.UNAVAILABLE.value: outcome.reason or "the bank could not be reached",
            }.get(outcome.state, f"the payment order was refused: {outcome.reason}")
            again = await self._tasks.decide(
                TaskKind.DISBURSEMENT_REFUSED,
                context={"refused": what, "reasons": [what], "order_key": check.order_key},
            )
            if outcome.state == OrderState.REJECTED.value:
                attempt += 1  # the rejected key is spent (and its reservation released)
            if again.decision == "reject":
                if outcome.state == OrderState.UNAVAILABLE.value and await self._bank_has(
                    check.order_key
                ):
                    continue  # the bank took the order after all: follow it, never drop it
                self._p.moving_to = Stage.REJECTED  # once the reservation is released
                await self._release(check.order_key, again.comment or what)
                raise Ended(Stage.REJECTED, again.comment or what, again.user)
        assert outcome.value_date is not None
        await workflow.execute_activity_method(
            PayoutActivities.record_payout,
            RecordPayoutInput(
                application_no=self._inp.application_no,
                order_key=check.order_key,
                principal=terms.principal,
                net_amount=check.amount,
                bank_order_id=outcome.bank_order_id,
                value_date=outcome.value_date,
                requested_by=request.user,
                authorized_by=tuple(authorized),
                at=workflow.now(),
            ),
            **DB_WRITE,
        )
        start = start_date_of(outcome.value_date, self._p.today())
        installments = balances_from_schedule(terms.schedule(start))
        await workflow.execute_activity_method(
            DisbursementActivities.book_loan,
            BookLoanInput(self._inp.application_no, start, installments, workflow.now()),
            **DB_WRITE,
        )
        await self._p.enter(Stage.SERVICING, actor=authorized[0])
        return start, installments

    async def _precheck(
        self, attempt: int, maker: str, authorized: tuple[str, ...]
    ) -> PrecheckResult | None:
        """The pre-check list passed (the money reserved); None when the payout waited for
        funds (check again). A failed item puts the reasons before a person: retry (loop) or
        reject (the application ends REJECTED)."""
        while True:
            check = await workflow.execute_activity_method(
                PayoutActivities.precheck_payout,
                PrecheckInput(
                    application_no=self._inp.application_no,
                    attempt=attempt,
                    terms=self._terms_offer().terms,
                    contract=self._signed_contract(),
                    requested_by=maker,
                    authorized_by=authorized,
                    at=workflow.now(),
                    business_date=self._p.today(),
                ),
                **EXTERNAL_HTTP,
            )
            if check.ok:
                return check
            if check.only_funds_missing:
                await self._await_funds(check)
                return None
            again = await self._tasks.decide(
                TaskKind.DISBURSEMENT_REFUSED,
                context={
                    "refused": "the disbursement pre-check failed",
                    "reasons": check.reasons(),
                    "order_key": check.order_key,
                },
            )
            if again.decision == "reject":
                self._p.moving_to = Stage.REJECTED  # once the reservation is released
                await self._release(check.order_key, again.comment or "pre-check failed")
                raise Ended(
                    Stage.REJECTED, again.comment or "the disbursement pre-check failed", again.user
                )

    async def _await_funds(self, check: PrecheckResult) -> None:
        """The pool cannot cover the payout: a task says why; the payout is checked again every
        ``funds_recheck_minutes`` and goes on once a top-up covers it (the task then closes);
        deciding the task ``reject`` ends the application instead."""
        task_id = await self._tasks.open(
            TaskKind.DISBURSEMENT_AWAITING_FUNDS,
            context={"amount": str(check.amount), "reasons": check.reasons()},
        )
        waiter = asyncio.create_task(self._tasks.wait(task_id, resting=True))
        every = timedelta(minutes=self._p.policy.funds_recheck_minutes)
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(waiter.done, timeout=every)
            if waiter.done():
                decision = waiter.result()
                reason = (decision.comment if decision else None) or "the pool could not fund it"
                raise Ended(Stage.REJECTED, reason, decision.user if decision else "system")
            funded = await workflow.execute_activity_method(
                PayoutActivities.funds_available,
                FundsInput(self._inp.application_no, check.order_key, check.amount, workflow.now()),
                **DB_WRITE,
            )
            if funded and not waiter.done():
                waiter.cancel()
                await self._tasks.close(task_id, TaskStatus.COMPLETED)
                return

    async def _bank_has(self, key: str) -> bool:
        """Whether the bank holds an order under ``key`` that is pending or executed (asked
        before a payout whose order may have reached the bank is given up; retried until the
        bank answers)."""
        known = await workflow.execute_activity_method(
            PayoutActivities.payment_order_status,
            OrderInput(self._inp.application_no, key),
            **POLL,
        )
        return known.state in (OrderState.PENDING.value, OrderState.EXECUTED.value)

    async def _release(self, key: str, reason: str) -> None:
        await workflow.execute_activity_method(
            PayoutActivities.release_payout,
            ReleasePayoutInput(self._inp.application_no, key, reason, workflow.now()),
            **DB_WRITE,
        )

    async def _disbursement_before_payout(self) -> tuple[date, tuple[InstallmentBalance, ...]]:
        """Loans that reached disbursement before payout-v1: the checker approves; the
        pre-check runs with the payout (the disbursement row). A refusal becomes a task with its
        reasons (retry once fixed, or reject), never a failed workflow."""
        approval = await self._tasks.decide(TaskKind.DISBURSEMENT)
        if approval.decision == "reject":
            raise Ended(Stage.REJECTED, approval.comment or "disbursement refused", approval.user)
        terms = self._terms_offer().terms
        while True:
            try:
                paid = await workflow.execute_activity_method(
                    DisbursementActivities.disburse,
                    DisburseInput(
                        application_no=self._inp.application_no,
                        idempotency_key=f"disburse-{self._inp.application_no}",
                        principal=terms.principal,
                        net_amount=terms.payout,
                        upfront_fee_deducted=terms.fee_deducted > 0,
                        approved_by=approval.user,
                        at=workflow.now(),
                        business_timezone=self._p.policy.business_timezone,
                    ),
                    **DB_WRITE,
                )
                break
            except ActivityError as exc:
                refusal = business_refusal(exc)
                if refusal is None:
                    raise
                again = await self._tasks.decide(
                    TaskKind.DISBURSEMENT_REFUSED,
                    context={"refused": refusal.what, "reasons": list(refusal.reasons)},
                )
                if again.decision == "reject":
                    raise Ended(
                        Stage.REJECTED, again.comment or f"{refusal.what}", again.user
                    ) from None
        installments = balances_from_schedule(terms.schedule(paid.business_date))
        await workflow.execute_activity_method(
            DisbursementActivities.book_loan,
            BookLoanInput(
                self._inp.application_no, paid.business_date, installments, workflow.now()
            ),
            **DB_WRITE,
        )
        await self._p.enter(Stage.SERVICING, actor=approval.user)
        return paid.business_date, installments

    # ---- the offer and the contract --------------------------------------------------------------

    def _terms_offer(self) -> Offer:
        if self._offer is None:  # unreachable: every caller runs after product matching
            raise Ended(Stage.REJECTED, "no offer was made")
        return self._offer

    def _signed_contract(self) -> ContractInfo:
        if self._contract is None:  # unreachable: disbursement follows the signature
            raise Ended(Stage.REJECTED, "no contract was prepared")
        return self._contract

    def _check_terms(self, task: OpenTask, req: DecisionRequest) -> None:
        if task.kind == TaskKind.PRODUCT_MATCHING and req.decision == "approve":
            self._matching.make_offer(req)
        if (
            task.kind == TaskKind.OFFER_CONFIRMATION
            and req.decision == "other_terms"
            and not (req.comment or "").strip()
        ):
            raise ValueError("comment: say which other terms the borrower asks for")

    # ---- updates and the query ---------------------------------------------------------------

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        return await self._tasks.handle(req)

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        self._tasks.validate(req, self._check_terms)

    @workflow.update(name=WITHDRAW_UPDATE)
    async def withdraw(self, req: WithdrawRequest) -> DecisionResult:
        self._withdrawal = req
        await workflow.wait_condition(lambda: self._p.stage == Stage.WITHDRAWN)
        return DecisionResult(task_id="withdraw", stage=self._p.stage)

    @withdraw.validator
    def _validate_withdraw(self, req: WithdrawRequest) -> None:
        if not is_allowed(req.roles, Action.WITHDRAW):
            refuse("Forbidden", "a loan is withdrawn by a business_officer or department_manager")
        if not self._p.stage.can_withdraw or self._withdrawal is not None:
            refuse("WrongStage", f"a loan in {self._p.stage.value} can no longer be withdrawn")

    @workflow.update(name=SIGN_UPDATE)
    async def sign_contract(self, req: SignRequest) -> DecisionResult:
        if self._signing or self._signed:  # validators of simultaneous updates both passed
            refuse("WrongStage", "the contract is already being signed")
        self._signing = True
        try:
            await workflow.execute_activity_method(
                ContractActivities.record_signature,
                SignatureInput(
                    application_no=self._inp.application_no,
                    document_id=req.document_id,
                    sha256=req.sha256,
                    signed_at=workflow.now(),
                ),
                **on_render_queue(RENDER),
            )
        except ActivityError as exc:
            refusal = business_refusal(exc)
            self._signing = False
            if refusal is None:
                raise
            # The stored contract no longer matches its hash: refuse this signature; the loan
            # keeps waiting (and expires if no genuine contract is signed in time).
            refuse("DocumentChanged", f"{refusal.what}; it cannot be signed")
        self._signed = True
        await workflow.wait_condition(
            lambda: self._p.stage != Stage.CONTRACT_SIGNING or self._sealing
        )
        if workflow.patched(ANSWER_PATCH):  # recorded: the seal (its task) comes next
            return DecisionResult(task_id=req.document_id, stage=self._p.heading())
        return DecisionResult(task_id=req.document_id, stage=await self._p.settled_stage())

    @sign_contract.validator
    def _validate_signature(self, req: SignRequest) -> None:
        if not is_allowed(req.principals, Action.SIGN_CONTRACT):
            refuse("Forbidden", "the contract is signed by the borrower, through the signing link")
        if (
            self._p.stage != Stage.CONTRACT_SIGNING
            or self._signed
            or self._signing
            or self._contract is None
        ):
            refuse("WrongStage", f"the contract cannot be signed in {self._p.stage.value}")
        if req.document_id != self._contract.document_id or req.sha256 != self._contract.sha256:
            refuse("WrongDocument", "this is not the contract awaiting signature")

    @workflow.update(name=PAYMENT_UPDATE)
    async def post_payment(self, req: PaymentRequest) -> PaymentResult:
        refuse("WrongStage", f"payments are posted in SERVICING, not {self._p.stage.value}")

    @post_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        if self._p.stage == Stage.SERVICING:
            refuse("Retry", "the loan is starting servicing; post the payment again in a moment")
        refuse("WrongStage", f"payments are posted in SERVICING, not {self._p.stage.value}")

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LoanView:
        return LoanView(
            application_no=self._inp.application_no,
            stage=self._p.stage,
            policy=self._p.policy,
            open_tasks=self._tasks.visible(),
            offer=self._offer,
            contract=self._contract,
        )
