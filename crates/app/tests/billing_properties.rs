//! Property tests of flat per-line billing (PRODUCT.md §4, docs/billing.md) against the real
//! application: a sandbox [`App`] on a fresh SQLite store, the sandbox card processor and the
//! simulated connector, driven by random sequences of what a business and the passing of time
//! can do (create, scan and release lines, top up, auto top-up, declines, card removal, clock
//! jumps of minutes to weeks).
//!
//! After every step the whole store is read back and checked against the money rules: every
//! posting balances, the wallet is the sum of its transactions and never negative, no line is
//! charged twice for a period nor after its release, no billed line is left without a paid
//! period or a scheduled charge, and every card payment the processor took is in the wallet
//! exactly once. Virtual numbers (§12) join the histories: verifications and rentals are
//! ordered, receive codes, are canceled, extended and expire, and their charges and refunds
//! obey the same ledger, each refund reversing its number's charge once. The checks read the database with their own SQL (a second, read-only
//! connection to the same file) rather than through the store's methods, so a store bug cannot
//! hide itself by answering the check the way it wrote the data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use wagate_app::accounts::{authenticate, create_account, Principal};
use wagate_app::lines::{CreateLine, CHARGE_JOB};
use wagate_app::{App, AppError, RuleError};
use wagate_domain::billing::plan::Plan;
use wagate_domain::billing::schedule::{period_end, TRIAL};
use wagate_domain::clock::{Clock, ManualClock};
use wagate_domain::ids::{LineId, NumberId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{BillingStatus, LineStatus, ReleaseReason};
use wagate_domain::money::Micros;
use wagate_domain::number::NumberKind;
use wagate_domain::time::to_micros;
use wagate_store::{LineRecord, SqlStore, Store};

/// Micro-units per dollar.
const DOLLAR: i64 = 1_000_000;

/// One thing that can happen to the account, as generated (and shrunk) by proptest.
#[derive(Debug, Clone)]
enum Op {
    /// `POST /wa/lines` with flags the calling rollout allows.
    CreateLine {
        calling_enabled: bool,
        allow_calling: bool,
    },
    /// The end customer scans one of the pending lines (nothing if none is pending), with the
    /// connect page's calling toggle set, cleared or untouched.
    Scan { pick: Index, calling: Option<bool> },
    /// `POST /billing/wallet/topups` of whole dollars.
    Topup { dollars: i64 },
    /// `PUT /billing/wallet/auto_topup`.
    AutoTopup {
        enabled: bool,
        threshold_dollars: i64,
        amount_dollars: i64,
    },
    /// `POST /sandbox/payments/fail_next`: the next `count` new card charges decline.
    FailNext { count: u32 },
    /// `DELETE /wa/lines/{id}` of one of the open lines (nothing if none is open).
    Release { pick: Index },
    /// `POST /sandbox/clock/advance` by this many seconds.
    Advance { secs: i64 },
    /// Advance exactly to the next due job (or run what is due now): lands the clock on
    /// renewal, trial-end and grace instants, where off-by-one mistakes live.
    AdvanceToNextDue,
    /// `DELETE /billing/card`.
    RemoveCard,
    /// `POST /billing/card` with the sandbox's good nonce (replacing any card).
    AddCard,
    /// `POST /numbers`: a verification (`None`) or a rental of so many hours.
    OrderNumber { rental_hours: Option<u32> },
    /// `POST /sandbox/numbers/{id}/sms` with a code, to one of the numbers.
    NumberCode { pick: Index },
    /// `POST /numbers/{id}/cancel` of one of the numbers.
    CancelNumber { pick: Index },
    /// `POST /numbers/{id}/extend` of one of the numbers.
    ExtendNumber { pick: Index, hours: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just((false, false)),
        Just((true, false)),
        Just((false, true)),
    ];
    let jump = prop_oneof![
        60i64..=3_600,
        3_600i64..=3 * 86_400,
        86_400i64..=40 * 86_400,
    ];
    prop_oneof![
        4 => flags.prop_map(|(calling_enabled, allow_calling)| Op::CreateLine {
            calling_enabled,
            allow_calling,
        }),
        4 => (any::<Index>(), proptest::option::of(any::<bool>()))
            .prop_map(|(pick, calling)| Op::Scan { pick, calling }),
        2 => (5i64..=200).prop_map(|dollars| Op::Topup { dollars }),
        2 => (any::<bool>(), 0i64..=50, 20i64..=100).prop_map(
            |(enabled, threshold_dollars, amount_dollars)| Op::AutoTopup {
                enabled,
                threshold_dollars,
                amount_dollars,
            }
        ),
        2 => (0u32..=3).prop_map(|count| Op::FailNext { count }),
        1 => any::<Index>().prop_map(|pick| Op::Release { pick }),
        4 => jump.prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::AdvanceToNextDue),
        1 => Just(Op::RemoveCard),
        2 => Just(Op::AddCard),
        3 => proptest::option::of(1u32..=48).prop_map(|rental_hours| Op::OrderNumber { rental_hours }),
        2 => any::<Index>().prop_map(|pick| Op::NumberCode { pick }),
        1 => any::<Index>().prop_map(|pick| Op::CancelNumber { pick }),
        1 => (any::<Index>(), 1u32..=24).prop_map(|(pick, hours)| Op::ExtendNumber { pick, hours }),
    ]
}

/// Start instants that make month arithmetic interesting: a 31st (clamped to Feb 28, then
/// back to Mar 31), a leap day, a year end, and a plain mid-month day.
fn start() -> impl Strategy<Value = Timestamp> {
    prop::sample::select(vec![
        "2026-01-31T09:00:00Z",
        "2028-02-29T12:00:00Z",
        "2026-12-31T23:30:00Z",
        "2026-03-15T00:00:00Z",
    ])
    .prop_map(|s| s.parse::<Timestamp>().expect("a valid start instant"))
}

/// The application under test with what the test knows about it.
struct Harness {
    /// Holds the database file; dropped (deleted) with the harness.
    _dir: tempfile::TempDir,
    app: App,
    clock: Arc<ManualClock>,
    who: Principal,
    /// A second, read-only connection to the same SQLite file, for the invariant queries.
    db: SqlitePool,
    /// Every line created, in creation order.
    lines: Vec<LineId>,
    /// Every number bought, in order.
    numbers: Vec<NumberId>,
    /// For each released line, how many charges it had when the test saw it released: a
    /// released line must never get another.
    released_charges: HashMap<String, i64>,
    /// A card is on file.
    has_card: bool,
    /// A line of the account was scanned already, so no later line gets the free week.
    trial_used: bool,
    /// A `fail_next` count may still be pending: until a charge is seen succeeding, a decline
    /// is expected behaviour rather than a bug.
    maybe_declining: bool,
}

impl Harness {
    async fn new(start: Timestamp) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await?);
        let clock = Arc::new(ManualClock::new(start));
        let app = App::sandbox(store, clock.clone())?;
        let created = create_account(&app, "Property Test Co", true).await?;
        let who = authenticate(&app, &created.api_key)
            .await?
            .context("the new account's key authenticates")?;
        app.billing.add_card(&who, "cnon:card-nonce-ok").await?;
        // Read-only: the checks can never write, so they cannot mask or cause a problem.
        let db = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(dir.path().join("wagate.db"))
                    .read_only(true),
            )
            .await?;
        Ok(Harness {
            _dir: dir,
            app,
            clock,
            who,
            db,
            lines: Vec::new(),
            numbers: Vec::new(),
            released_charges: HashMap::new(),
            has_card: true,
            trial_used: false,
            maybe_declining: false,
        })
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn line(&self, id: &LineId) -> anyhow::Result<LineRecord> {
        self.app
            .store
            .line_by_id(id)
            .await?
            .with_context(|| format!("line {id} exists"))
    }

    /// The created lines that satisfy `keep`, in creation order.
    async fn lines_where(
        &self,
        keep: impl Fn(&LineRecord) -> bool,
    ) -> anyhow::Result<Vec<LineRecord>> {
        let mut out = Vec::new();
        for id in &self.lines {
            let l = self.line(id).await?;
            if keep(&l) {
                out.push(l);
            }
        }
        Ok(out)
    }

    async fn charge_count(&self, line: &LineId) -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM line_charges WHERE line_id = ?")
            .bind(line.as_str())
            .fetch_one(&self.db)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Remembers the charge count of every line released so far (by the test or, during a
    /// clock advance, for non-payment) that is not remembered yet.
    async fn note_released(&mut self) -> anyhow::Result<()> {
        for l in self
            .lines_where(|l| l.status == LineStatus::Released)
            .await?
        {
            if !self.released_charges.contains_key(l.id.as_str()) {
                let n = self.charge_count(&l.id).await?;
                self.released_charges.insert(l.id.to_string(), n);
            }
        }
        Ok(())
    }

    async fn advance_to(&mut self, target: Timestamp) -> anyhow::Result<()> {
        let report = self.app.scheduler.advance_to(&self.clock, target).await?;
        ensure!(
            report.to == target && self.now() == target,
            "clock at target"
        );
        self.note_released().await
    }

    async fn apply(&mut self, op: &Op) -> anyhow::Result<()> {
        let account = self.who.account.id.clone();
        match op {
            Op::CreateLine {
                calling_enabled,
                allow_calling,
            } => {
                let req = CreateLine {
                    calling_enabled: *calling_enabled,
                    allow_calling: *allow_calling,
                    ..CreateLine::default()
                };
                match self.app.lines.create(&self.who, req).await {
                    Ok(line) => {
                        ensure!(self.has_card, "a line was created without a card on file");
                        ensure!(line.status == LineStatus::Pending);
                        ensure!(line.billing_status == BillingStatus::None);
                        self.lines.push(line.id);
                    }
                    Err(AppError::Rule(RuleError::CardRequired)) if !self.has_card => {}
                    Err(e) => bail!("create line: {e:#}"),
                }
            }
            Op::Scan { pick, calling } => {
                let pending = self
                    .lines_where(|l| l.status == LineStatus::Pending)
                    .await?;
                if pending.is_empty() {
                    return Ok(());
                }
                let line = &pending[pick.index(pending.len())];
                let phone = format!("+1555{:07}", self.lines.len() * 31 + pick.index(1000));
                self.app
                    .connector
                    .simulator()
                    .context("the sandbox connector is the simulator")?
                    .scan(&line.id, phone, *calling)
                    .await?;
                let after = self.line(&line.id).await?;
                ensure!(after.status == LineStatus::Ready, "scanned line is ready");
                // The plan is fixed at the scan from the flags and the customer's toggle.
                let calling_plan =
                    line.calling_enabled || (line.allow_calling && *calling == Some(true));
                let plan = if calling_plan {
                    Plan::Calling
                } else {
                    Plan::Messaging
                };
                ensure!(
                    after.plan == Some(plan),
                    "plan {:?} != {plan:?}",
                    after.plan
                );
                let price = Micros(if calling_plan {
                    20 * DOLLAR
                } else {
                    15 * DOLLAR
                });
                ensure!(after.price == Some(price), "price {:?}", after.price);
                let now = self.now();
                if self.trial_used {
                    ensure!(
                        after.billing_status == BillingStatus::None
                            && after.anchor_at == Some(now)
                            && after.trial_ends_at.is_none(),
                        "a later line is charged at ready, without a trial: {after:?}"
                    );
                } else {
                    ensure!(
                        after.billing_status == BillingStatus::Trialing
                            && after.trial_ends_at == Some(now + TRIAL)
                            && after.anchor_at == Some(now + TRIAL),
                        "the account's first line gets the free week: {after:?}"
                    );
                    self.trial_used = true;
                }
            }
            Op::Topup { dollars } => {
                let amount = Micros(dollars * DOLLAR);
                let before = self.app.billing.account(&self.who).await?.balance;
                match self.app.billing.topup(&self.who, amount, None).await {
                    Ok(r) => {
                        ensure!(self.has_card, "topped up without a card");
                        ensure!(r.status == "succeeded", "sandbox top-up is {}", r.status);
                        let after = self.app.billing.account(&self.who).await?.balance;
                        ensure!(
                            r.balance == after && after.0 == before.0 + amount.0,
                            "top-up of {amount:?}: {before:?} -> {after:?} (reported {:?})",
                            r.balance
                        );
                        self.maybe_declining = false;
                    }
                    Err(AppError::Rule(RuleError::CardRequired)) if !self.has_card => {}
                    Err(AppError::Rule(RuleError::CardDeclined { .. }))
                        if self.has_card && self.maybe_declining =>
                    {
                        let after = self.app.billing.account(&self.who).await?.balance;
                        ensure!(after == before, "a declined top-up moved the wallet");
                    }
                    Err(e) => bail!("top-up: {e:#}"),
                }
            }
            Op::AutoTopup {
                enabled,
                threshold_dollars,
                amount_dollars,
            } => {
                let b = self
                    .app
                    .billing
                    .set_auto_topup(
                        &self.who,
                        *enabled,
                        Micros(threshold_dollars * DOLLAR),
                        Micros(amount_dollars * DOLLAR),
                    )
                    .await?;
                ensure!(b.auto_topup_enabled == *enabled);
            }
            Op::FailNext { count } => {
                self.app
                    .billing
                    .processor()
                    .sandbox()
                    .context("the sandbox processor")?
                    .fail_next(&account, *count);
                self.maybe_declining = *count > 0;
            }
            Op::Release { pick } => {
                let open = self
                    .lines_where(|l| l.status != LineStatus::Released)
                    .await?;
                if open.is_empty() {
                    return Ok(());
                }
                let line = &open[pick.index(open.len())];
                let after = self
                    .app
                    .lines
                    .release(&account, &line.id, ReleaseReason::Requested)
                    .await?;
                ensure!(
                    after.status == LineStatus::Released
                        && after.billing_status == BillingStatus::Canceled
                        && after.released_at == Some(self.now()),
                    "released: {after:?}"
                );
                self.note_released().await?;
            }
            Op::Advance { secs } => {
                let target = self.now() + SignedDuration::from_secs(*secs);
                self.advance_to(target).await?;
            }
            Op::AdvanceToNextDue => {
                let now = self.now();
                let target = match self.app.store.next_job_due_at().await? {
                    Some(due) if due > now => due,
                    _ => now,
                };
                self.advance_to(target).await?;
            }
            Op::RemoveCard => match self.app.billing.delete_card(&self.who).await {
                Ok(_) if self.has_card => self.has_card = false,
                Err(AppError::NotFound(_)) if !self.has_card => {}
                other => bail!("remove card with has_card={}: {other:?}", self.has_card),
            },
            Op::AddCard => {
                self.app
                    .billing
                    .add_card(&self.who, "cnon:card-nonce-ok")
                    .await?;
                self.has_card = true;
            }
            Op::OrderNumber { rental_hours } => {
                let kind = match rental_hours {
                    Some(_) => NumberKind::Rental,
                    None => NumberKind::Verification,
                };
                let before = self.app.billing.account(&self.who).await?.balance;
                match self
                    .app
                    .numbers
                    .order(&self.who, "whatsapp", "GB", kind, *rental_hours)
                    .await
                {
                    Ok(n) => {
                        ensure!(n.price <= before, "bought past the balance: {n:?}");
                        self.numbers.push(n.id);
                    }
                    Err(AppError::Rule(RuleError::NumberBalance { required })) => {
                        ensure!(required > before, "refused with {before} for {required}")
                    }
                    // The simulated providers sell out and fail now and then.
                    Err(AppError::Rule(
                        RuleError::OutOfStock(_) | RuleError::NumbersUnavailable(_),
                    )) => {}
                    Err(e) => bail!("order: {e:?}"),
                }
            }
            Op::NumberCode { pick } => {
                if let Some(id) = self.pick_number(pick) {
                    match self
                        .app
                        .numbers
                        .sandbox_sms(&self.who, &id, "code 4821")
                        .await
                    {
                        Ok(_) | Err(AppError::Rule(RuleError::NumberNotNow(_))) => {}
                        Err(e) => bail!("sms: {e:?}"),
                    }
                }
            }
            Op::CancelNumber { pick } => {
                if let Some(id) = self.pick_number(pick) {
                    match self.app.numbers.cancel(&self.who, &id).await {
                        Ok(n) => {
                            ensure!(n.refund_transaction_id.is_some(), "a cancel refunds: {n:?}")
                        }
                        Err(AppError::Rule(RuleError::NumberNotNow(_))) => {}
                        Err(e) => bail!("cancel: {e:?}"),
                    }
                }
            }
            Op::ExtendNumber { pick, hours } => {
                if let Some(id) = self.pick_number(pick) {
                    match self.app.numbers.extend(&self.who, &id, *hours).await {
                        Ok(_)
                        | Err(AppError::Rule(
                            RuleError::NumberNotNow(_) | RuleError::NumberBalance { .. },
                        )) => {}
                        Err(e) => bail!("extend: {e:?}"),
                    }
                }
            }
        }
        Ok(())
    }

    fn pick_number(&self, pick: &Index) -> Option<NumberId> {
        (!self.numbers.is_empty()).then(|| pick.get(&self.numbers).clone())
    }

    /// The number invariants: each number's charges add up to its price, each refund
    /// reverses its number's order charge once and only where the rules refund, and no
    /// number outlives its expiry.
    async fn check_numbers(&self) -> anyhow::Result<()> {
        let db = &self.db;
        let now = to_micros(self.now());
        let charged: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount), 0) FROM ledger_transactions WHERE type = 'number_charge'",
        )
        .fetch_one(db)
        .await?;
        let priced: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(price), 0) FROM numbers")
            .fetch_one(db)
            .await?;
        ensure!(
            charged == -priced,
            "number charges {charged} against prices {priced}"
        );
        for r in sqlx::query(
            "SELECT n.id, n.kind, n.status, n.price, n.expires_at, n.refund_transaction_id,
                    (SELECT COUNT(*) FROM ledger_transactions t
                      WHERE t.reverses = n.charge_transaction_id) AS refunds,
                    (SELECT t.amount FROM ledger_transactions t
                      WHERE t.reverses = n.charge_transaction_id AND t.type = 'refund') AS refunded,
                    (SELECT t.amount FROM ledger_transactions t
                      WHERE t.id = n.charge_transaction_id AND t.type = 'number_charge') AS charge
             FROM numbers n",
        )
        .fetch_all(db)
        .await?
        {
            let id: String = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let status: String = r.try_get("status")?;
            let refunds: i64 = r.try_get("refunds")?;
            let refunded: Option<i64> = r.try_get("refunded")?;
            let charge: Option<i64> = r.try_get("charge")?;
            let refund_id: Option<String> = r.try_get("refund_transaction_id")?;
            let expires_at: i64 = r.try_get("expires_at")?;
            let charge = charge.with_context(|| format!("number {id} has its order charge"))?;
            let should_refund =
                kind == "verification" && (status == "canceled" || status == "expired");
            ensure!(
                refunds == i64::from(should_refund) && refund_id.is_some() == should_refund,
                "number {id} ({kind}, {status}) has {refunds} refunds"
            );
            if should_refund {
                ensure!(
                    refunded == Some(-charge),
                    "number {id} refunded {refunded:?} of {charge}"
                );
            }
            ensure!(
                status != "active" || expires_at > now,
                "number {id} is active past its expiry"
            );
        }
        Ok(())
    }

    /// Every invariant, read straight from the database.
    async fn check(&self) -> anyhow::Result<()> {
        self.check_numbers().await?;
        let now = to_micros(self.now());
        let db = &self.db;

        // No job failed: a failed charge job is a charge that did not happen on time (and
        // its error says why better than any invariant below).
        let failed = sqlx::query("SELECT kind, last_error FROM jobs WHERE attempts > 0")
            .fetch_all(db)
            .await?;
        if let Some(r) = failed.first() {
            bail!(
                "job {} failed: {:?}",
                r.try_get::<String, _>("kind")?,
                r.try_get::<Option<String>, _>("last_error")?
            );
        }

        // 1. Every ledger transaction is a balanced posting of at least two entries.
        let unbalanced = sqlx::query(
            "SELECT t.id, COALESCE(SUM(e.amount), 0) AS total, COUNT(e.seq) AS n
             FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
             GROUP BY t.id HAVING total <> 0 OR n < 2",
        )
        .fetch_all(db)
        .await?;
        if let Some(r) = unbalanced.first() {
            bail!(
                "transaction {} does not balance: entries sum to {} over {} entries",
                r.try_get::<String, _>("id")?,
                r.try_get::<i64, _>("total")?,
                r.try_get::<i64, _>("n")?
            );
        }

        // 2. The wallet: the balance is the running sum of its transactions, each step's
        // balance_after is that running sum (and its wallet entry agrees), never negative.
        for acct in sqlx::query("SELECT account_id, balance FROM billing_accounts")
            .fetch_all(db)
            .await?
        {
            let account: String = acct.try_get("account_id")?;
            let balance: i64 = acct.try_get("balance")?;
            ensure!(balance >= 0, "wallet of {account} is negative: {balance}");
            let txns = sqlx::query(
                "SELECT t.id, t.amount, t.balance_after,
                        (SELECT COUNT(*) FROM ledger_entries x
                          WHERE x.transaction_id = t.id
                            AND x.ledger_account = 'wallet:' || t.account_id) AS wallet_entries,
                        (SELECT x.amount FROM ledger_entries x
                          WHERE x.transaction_id = t.id
                            AND x.ledger_account = 'wallet:' || t.account_id) AS entry_amount,
                        (SELECT x.balance_after FROM ledger_entries x
                          WHERE x.transaction_id = t.id
                            AND x.ledger_account = 'wallet:' || t.account_id) AS entry_after
                 FROM ledger_transactions t WHERE t.account_id = ? ORDER BY t.seq",
            )
            .bind(&account)
            .fetch_all(db)
            .await?;
            let mut running = 0i64;
            for t in &txns {
                let id: String = t.try_get("id")?;
                let amount: i64 = t.try_get("amount")?;
                let after: i64 = t.try_get("balance_after")?;
                running += amount;
                ensure!(
                    after == running,
                    "transaction {id}: balance_after {after} but the running sum is {running}"
                );
                ensure!(after >= 0, "transaction {id} leaves the wallet negative");
                ensure!(
                    t.try_get::<i64, _>("wallet_entries")? == 1
                        && t.try_get::<Option<i64>, _>("entry_amount")? == Some(amount)
                        && t.try_get::<Option<i64>, _>("entry_after")? == Some(after),
                    "transaction {id}: its wallet entry disagrees with it"
                );
            }
            ensure!(
                running == balance,
                "wallet of {account} is {balance} but its transactions sum to {running}"
            );
        }

        // 3. At most one charge per line and period, each backed by its own debit of the
        // line's price; the charged periods of a line are 0, 1, … without a gap.
        let dup = sqlx::query(
            "SELECT line_id, period, COUNT(*) AS n FROM line_charges
             GROUP BY line_id, period HAVING n > 1",
        )
        .fetch_all(db)
        .await?;
        if let Some(r) = dup.first() {
            bail!(
                "line {} charged {} times for period {}",
                r.try_get::<String, _>("line_id")?,
                r.try_get::<i64, _>("n")?,
                r.try_get::<i64, _>("period")?
            );
        }
        let bad_debits = sqlx::query(
            "SELECT c.line_id, c.period FROM line_charges c
             LEFT JOIN ledger_transactions t ON t.id = c.transaction_id
             JOIN lines l ON l.id = c.line_id
             WHERE t.id IS NULL OR t.type <> 'line_charge' OR t.amount <> -c.amount
                OR t.line_id IS NOT c.line_id OR c.amount <> l.price",
        )
        .fetch_all(db)
        .await?;
        if let Some(r) = bad_debits.first() {
            bail!(
                "charge of line {} period {} is not one debit of the line's price",
                r.try_get::<String, _>("line_id")?,
                r.try_get::<i64, _>("period")?
            );
        }
        let orphan_debits = sqlx::query(
            "SELECT t.id FROM ledger_transactions t
             WHERE t.type = 'line_charge'
               AND NOT EXISTS (SELECT 1 FROM line_charges c WHERE c.transaction_id = t.id)",
        )
        .fetch_all(db)
        .await?;
        ensure!(
            orphan_debits.is_empty(),
            "a line_charge debit without its line_charges row"
        );

        let mut periods: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for r in sqlx::query("SELECT line_id, period FROM line_charges ORDER BY line_id, period")
            .fetch_all(db)
            .await?
        {
            periods
                .entry(r.try_get("line_id")?)
                .or_default()
                .push(r.try_get("period")?);
        }
        for (line, ps) in &periods {
            let contiguous = ps.iter().enumerate().all(|(i, p)| *p == i as i64);
            ensure!(contiguous, "line {line} charged for periods {ps:?}: a gap");
        }

        // 4. Every open, linked line is paid up, on trial, in grace, or has its charge due
        // right now; and its next charge is scheduled.
        let mut trials = 0;
        for id in &self.lines {
            let l = self.line(id).await?;
            let charges = periods.get(id.as_str()).cloned().unwrap_or_default();
            trials += usize::from(l.trial_ends_at.is_some());
            let jobs = sqlx::query(
                "SELECT due_at, CAST(json_extract(payload, '$.period') AS INTEGER) AS period
                 FROM jobs WHERE kind = ? AND json_extract(payload, '$.line') = ?",
            )
            .bind(CHARGE_JOB)
            .bind(id.as_str())
            .fetch_all(db)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("due_at")?,
                    r.try_get::<i64, _>("period")?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
            let due_now = jobs.iter().any(|(due, _)| *due <= now);
            let us = |t: Option<Timestamp>| t.map(to_micros);
            match (l.status, l.billing_status) {
                (LineStatus::Released, status) => {
                    ensure!(
                        status == BillingStatus::Canceled && l.released_at.is_some(),
                        "released line {id} is {status:?}"
                    );
                }
                (LineStatus::Pending, status) => {
                    ensure!(
                        status == BillingStatus::None && charges.is_empty() && jobs.is_empty(),
                        "a never-scanned line {id} is billed ({status:?})"
                    );
                }
                (_, BillingStatus::None) => {
                    ensure!(
                        charges.is_empty() && jobs.contains(&(now, 0)),
                        "linked line {id} is unbilled with no first charge due now: {jobs:?}"
                    );
                }
                (_, BillingStatus::Trialing) => {
                    let end = us(l.trial_ends_at).context("trialing without an end")?;
                    ensure!(
                        charges.is_empty() && (end > now || due_now),
                        "trial of {id} ended ({end} <= {now}) without its conversion"
                    );
                    ensure!(
                        jobs.contains(&(end, 0)),
                        "trial of {id}: no conversion scheduled at its end: {jobs:?}"
                    );
                }
                (_, BillingStatus::Active) => {
                    let paid = l.paid_period.context("active without a paid period")?;
                    let anchor = l.anchor_at.context("active without an anchor")?;
                    ensure!(
                        charges.last() == Some(&i64::from(paid)),
                        "active line {id} has paid period {paid} but charges {charges:?}"
                    );
                    let end = us(l.current_period_end).context("active without period end")?;
                    ensure!(
                        end == to_micros(period_end(anchor, paid)),
                        "line {id}: period {paid} ends at {end}, not at its anniversary"
                    );
                    ensure!(
                        end > now || due_now,
                        "line {id}: period {paid} ended ({end} <= {now}) and was not renewed"
                    );
                    ensure!(
                        jobs.contains(&(end, i64::from(paid) + 1)),
                        "line {id}: renewal of period {} not scheduled at {end}: {jobs:?}",
                        paid + 1
                    );
                }
                (_, BillingStatus::PastDue) => {
                    let grace = us(l.grace_ends_at).context("past due without a grace end")?;
                    ensure!(
                        grace >= now,
                        "line {id} is past due after its grace ended ({grace} < {now})"
                    );
                    ensure!(
                        jobs.iter().any(|(due, _)| *due <= grace),
                        "past-due line {id} has no retry scheduled within its grace: {jobs:?}"
                    );
                }
                (status, BillingStatus::Canceled) => {
                    bail!("line {id} is canceled but {status:?}")
                }
            }
        }
        ensure!(trials <= 1, "{trials} lines got the one free week");

        // 5. A released line is never charged again.
        let late = sqlx::query(
            "SELECT c.line_id, c.period FROM line_charges c JOIN lines l ON l.id = c.line_id
             WHERE l.released_at IS NOT NULL AND c.created_at > l.released_at",
        )
        .fetch_all(db)
        .await?;
        if let Some(r) = late.first() {
            bail!(
                "released line {} charged afterwards for period {}",
                r.try_get::<String, _>("line_id")?,
                r.try_get::<i64, _>("period")?
            );
        }
        for (line, at_release) in &self.released_charges {
            let n = self.charge_count(&LineId::try_from(line.clone())?).await?;
            ensure!(
                n == *at_release,
                "released line {line} had {at_release} charges, now {n}"
            );
        }

        // 6. Card money: each successful payment is credited once, as a `topup` of its
        // amount; a refused one is not credited; none is left pending (the sandbox answers
        // at once); and the processor charged exactly the succeeded payments.
        let payments = sqlx::query(
            "SELECT p.id, p.status, p.amount,
                    (SELECT COUNT(*) FROM ledger_transactions t
                      WHERE t.payment_id = p.id) AS credits,
                    (SELECT COUNT(*) FROM ledger_transactions t
                      WHERE t.payment_id = p.id AND t.type = 'topup'
                        AND t.amount = p.amount) AS exact_credits
             FROM payments p",
        )
        .fetch_all(db)
        .await?;
        let mut succeeded: HashMap<String, i64> = HashMap::new();
        for p in &payments {
            let id: String = p.try_get("id")?;
            let status: String = p.try_get("status")?;
            let credits: i64 = p.try_get("credits")?;
            match status.as_str() {
                "succeeded" => {
                    ensure!(
                        credits == 1 && p.try_get::<i64, _>("exact_credits")? == 1,
                        "succeeded payment {id} credited {credits} times"
                    );
                    succeeded.insert(id, p.try_get("amount")?);
                }
                "pending" => bail!("payment {id} is still pending"),
                _ => ensure!(credits == 0, "refused payment {id} was credited"),
            }
        }
        let processor = self
            .app
            .billing
            .processor()
            .sandbox()
            .context("the sandbox processor")?;
        let charged = processor.charges();
        ensure!(
            charged.len() == succeeded.len()
                && charged
                    .iter()
                    .all(|(key, cents)| succeeded.get(key) == Some(&(cents * 10_000))),
            "the processor charged {charged:?}, the store has succeeded payments {succeeded:?}"
        );

        // The auto top-up flag is never stuck (it would switch auto top-up off for good).
        let b = self.app.billing.account(&self.who).await?;
        if b.auto_topup_in_flight {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE kind = ?")
                .bind(wagate_app::billing::AUTO_TOPUP_JOB)
                .fetch_one(db)
                .await?
                .try_get("n")?;
            ensure!(n > 0, "auto top-up marked in flight without a job");
        }
        Ok(())
    }
}

/// Runs one generated case: the ops in order, every invariant after each.
async fn run_case(start: Timestamp, ops: Vec<Op>) -> anyhow::Result<()> {
    let mut h = Harness::new(start).await?;
    h.check().await.context("before any op")?;
    for (i, op) in ops.iter().enumerate() {
        h.apply(op)
            .await
            .with_context(|| format!("op #{i} {op:?} at {}", h.now()))?;
        h.check()
            .await
            .with_context(|| format!("after op #{i} {op:?}, now {}", h.now()))?;
    }
    // Finally let a long time pass: whatever is running renews, is released for
    // non-payment, or stays paid — never unbilled.
    let end = h.now() + SignedDuration::from_hours(24 * 75);
    h.advance_to(end).await.context("final advance")?;
    h.check().await.context("after the final 75 days")?;
    let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&h.db);
    eprintln!("STATS ops={} lines={} charges={} payments={} declined={} failed={} released_pf={} pastdue_seen={} txns={} auto={} numbers={} refunds={}",
        ops.len(), h.lines.len(),
        q("SELECT COUNT(*) FROM line_charges").await?,
        q("SELECT COUNT(*) FROM payments").await?,
        q("SELECT COUNT(*) FROM payments WHERE status='declined'").await?,
        q("SELECT COUNT(*) FROM payments WHERE status='failed'").await?,
        q("SELECT COUNT(*) FROM lines WHERE release_reason='payment_failed'").await?,
        q("SELECT COUNT(*) FROM line_charges WHERE reason='grace_retry'").await?,
        q("SELECT COUNT(*) FROM ledger_transactions").await?,
        q("SELECT COUNT(*) FROM payments WHERE purpose='auto_topup'").await?,
        q("SELECT COUNT(*) FROM numbers").await?,
        q("SELECT COUNT(*) FROM ledger_transactions WHERE type='refund'").await?,
    );
    Ok(())
}

proptest! {
    // Each case is a fresh database and up to 25 ops with month-long jumps: 24 cases keep the
    // file well under a minute in a debug build. Raise with PROPTEST_CASES for a soak.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn billing_invariants_hold_over_random_histories(
        start in start(),
        ops in prop::collection::vec(op(), 1..=25),
    ) {
        // One runtime per case: the store's pools belong to it and close with it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(run_case(start, ops))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    }
}

/// The wallet holds exactly the price and three runs of the same period's charge job (the
/// scheduled one and two duplicates under other dedupe keys) run at once, from two
/// concurrent scheduler passes: one charge, one debit, the wallet at zero, no card charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_one_period_charge_once() -> anyhow::Result<()> {
    let mut h = Harness::new("2026-01-31T09:00:00Z".parse()?).await?;
    let account = h.who.account.id.clone();
    // Use up the free week on a first line, so the next line is charged at ready.
    h.apply(&Op::CreateLine {
        calling_enabled: false,
        allow_calling: false,
    })
    .await?;
    let first = h.lines[0].clone();
    h.app
        .connector
        .simulator()
        .context("simulator")?
        .scan(&first, "+15550000001".into(), None)
        .await?;
    h.trial_used = true;
    h.app
        .lines
        .release(&account, &first, ReleaseReason::Requested)
        .await?;
    // Exactly the messaging price in the wallet.
    h.apply(&Op::Topup { dollars: 15 }).await?;
    let card_charges_before = h
        .app
        .billing
        .processor()
        .sandbox()
        .context("sandbox")?
        .charges()
        .len();
    h.apply(&Op::CreateLine {
        calling_enabled: false,
        allow_calling: false,
    })
    .await?;
    let line = h.lines[1].clone();
    h.app
        .connector
        .simulator()
        .context("simulator")?
        .scan(&line, "+15550000002".into(), None)
        .await?;
    // The activation job the scan scheduled, duplicated twice under other dedupe keys.
    let row = sqlx::query(
        "SELECT payload, due_at FROM jobs WHERE kind = ? AND json_extract(payload, '$.line') = ?",
    )
    .bind(CHARGE_JOB)
    .bind(line.as_str())
    .fetch_one(&h.db)
    .await?;
    let payload: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>("payload")?)?;
    ensure!(row.try_get::<i64, _>("due_at")? == to_micros(h.now()));
    let dupes: Vec<NewJob> = (0..2)
        .map(|i| NewJob {
            kind: CHARGE_JOB.to_owned(),
            account_id: Some(account.clone()),
            payload: payload.clone(),
            due_at: h.now(),
            dedupe_key: Some(format!("duplicate-{i}")),
            line_id: None,
        })
        .collect();
    h.app.store.schedule_jobs(&dupes, h.now()).await?;
    let (a, b) = tokio::join!(h.app.scheduler.run_due_now(), h.app.scheduler.run_due_now());
    ensure!(a? + b? >= 3, "the three charge jobs ran");

    ensure!(h.charge_count(&line).await? == 1, "one charge for period 0");
    let l = h.line(&line).await?;
    ensure!(l.billing_status == BillingStatus::Active && l.paid_period == Some(0));
    let b = h.app.billing.account(&h.who).await?;
    ensure!(
        b.balance == Micros::ZERO,
        "wallet {:?} after one $15 charge",
        b.balance
    );
    let debits: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM ledger_transactions WHERE type = 'line_charge' AND line_id = ?",
    )
    .bind(line.as_str())
    .fetch_one(&h.db)
    .await?
    .try_get("n")?;
    ensure!(debits == 1, "{debits} debits for one period");
    let card_charges_after = h
        .app
        .billing
        .processor()
        .sandbox()
        .context("sandbox")?
        .charges()
        .len();
    ensure!(
        card_charges_after == card_charges_before,
        "the wallet covered the price exactly: the card must not be charged"
    );
    h.note_released().await?;
    h.check().await
}

/// Two $20 lines activate at the same instant with $7 in the wallet and auto top-up
/// {threshold $8, amount $13}: each charge plans a $13 top-up (the shortfall) from the same
/// balance read. Both card payments succeed; the first charge lands (7 + 13 − 20 = 0); the
/// second's credit + debit (0 + 13 − 20) is refused, its $13 is credited alone, and every
/// rerun then tries to debit $20 from the wallet without funding the rest — the line is never
/// charged, never past due, never released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_instant_charges_funded_by_stale_shortfall_still_charge_both() -> anyhow::Result<()> {
    let mut h = Harness::new("2026-01-31T09:00:00Z".parse()?).await?;
    let account = h.who.account.id.clone();
    // Use up the free week, so the next lines are charged at ready.
    h.apply(&Op::CreateLine {
        calling_enabled: false,
        allow_calling: false,
    })
    .await?;
    let first = h.lines[0].clone();
    let connector = h.app.connector.clone();
    let sim = connector.simulator().context("simulator")?;
    sim.scan(&first, "+15550000001".into(), None).await?;
    h.trial_used = true;
    h.app
        .lines
        .release(&account, &first, ReleaseReason::Requested)
        .await?;
    h.apply(&Op::Topup { dollars: 7 }).await?;
    h.apply(&Op::AutoTopup {
        enabled: true,
        threshold_dollars: 0,
        amount_dollars: 13,
    })
    .await?;
    for phone in ["+15550000002", "+15550000003"] {
        h.apply(&Op::CreateLine {
            calling_enabled: true,
            allow_calling: false,
        })
        .await?;
        let id = h.lines.last().context("the line")?.clone();
        sim.scan(&id, phone.into(), None).await?;
    }
    h.note_released().await?;
    // Both activations are due now and run at once; a day later everything due has run.
    let day = h.now() + SignedDuration::from_hours(24);
    h.advance_to(day).await?;
    for id in &h.lines[1..] {
        let l = h.line(id).await?;
        ensure!(
            l.billing_status == BillingStatus::Active || l.billing_status == BillingStatus::PastDue,
            "line {id} is {:?} a day after its scan",
            l.billing_status
        );
    }
    h.check().await
}
