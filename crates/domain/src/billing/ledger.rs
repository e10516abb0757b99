//! The wallet as a double-entry ledger, and how a line charge is funded.
//!
//! Every movement of money is a [`Posting`]: entries on [`LedgerAccount`]s whose signed
//! amounts sum to zero. A positive amount increases the account's balance. A wallet's balance
//! is the sum of its entries; [`apply`] refuses any posting that would take it below zero.
//! Postings are never edited: a correction is a [`reversal`].
//!
//! Card money enters the wallet first (a top-up from `CardClearing`) and the line charge is
//! then debited from the wallet to `Revenue`, so the transactions always add up to the balance.

use crate::ids::AccountId;
use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// An account of the ledger (not to be confused with a customer account).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LedgerAccount {
    /// The prepaid wallet of one customer account; never negative.
    Wallet(AccountId),
    /// Money collected from cards through the payment processor.
    CardClearing,
    /// Money earned from line and message charges.
    Revenue,
    /// The counterpart of manual corrections.
    Adjustments,
}

/// One side of a posting: a signed amount in micro-units on one ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The account it moves.
    pub account: LedgerAccount,
    /// Signed micro-units: positive increases that account's balance.
    pub amount: i64,
}

/// The kind of a wallet transaction, as `GET /billing/transactions` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnType {
    /// Card money credited to the wallet.
    Topup,
    /// A line's flat monthly charge.
    LineCharge,
    /// A manual correction, or the reversal of a top-up.
    Adjustment,
    /// The reversal of a charge.
    Refund,
    /// A per-message charge (Cloud API lines, §7).
    MessageCharge,
    /// A virtual number bought or a rental extended (§12).
    NumberCharge,
}

impl TxnType {
    /// The stored text: `topup`, `line_charge`, `adjustment`, `refund`, `message_charge`,
    /// `number_charge`.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnType::Topup => "topup",
            TxnType::LineCharge => "line_charge",
            TxnType::Adjustment => "adjustment",
            TxnType::Refund => "refund",
            TxnType::MessageCharge => "message_charge",
            TxnType::NumberCharge => "number_charge",
        }
    }
}

/// Why a posting or a ledger operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The entries do not sum to zero.
    #[error("posting is not balanced: its entries sum to {sum} micro-units")]
    Unbalanced {
        /// What they sum to instead.
        sum: i128,
    },
    /// A posting needs at least two entries.
    #[error("posting has fewer than two entries")]
    TooFewEntries,
    /// Amounts given to a builder must be positive.
    #[error("amount must be positive")]
    NonPositiveAmount,
    /// The wallet holds less than the posting takes from it.
    #[error("insufficient balance: {balance} micro-units, {shortfall} short")]
    InsufficientBalance {
        /// The balance before the posting.
        balance: i64,
        /// How much more the wallet would need.
        shortfall: i64,
    },
    /// The resulting balance does not fit in micro-units.
    #[error("amount overflows the ledger")]
    Overflow,
}

/// A balanced set of entries: one wallet transaction. Construct with [`Posting::new`] or a
/// builder; the fields are private so an unbalanced posting cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    txn_type: TxnType,
    entries: Vec<Entry>,
}

impl Posting {
    /// A posting of `entries`, refused unless they are at least two and sum to zero.
    pub fn new(txn_type: TxnType, entries: Vec<Entry>) -> Result<Posting, LedgerError> {
        if entries.len() < 2 {
            return Err(LedgerError::TooFewEntries);
        }
        let sum: i128 = entries.iter().map(|e| i128::from(e.amount)).sum();
        if sum != 0 {
            return Err(LedgerError::Unbalanced { sum });
        }
        Ok(Posting { txn_type, entries })
    }

    /// The transaction type.
    pub fn txn_type(&self) -> TxnType {
        self.txn_type
    }

    /// The entries, which sum to zero.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The net change this posting makes to `wallet`'s balance.
    pub fn wallet_delta(&self, wallet: &AccountId) -> i128 {
        self.entries
            .iter()
            .filter(|e| matches!(&e.account, LedgerAccount::Wallet(w) if w == wallet))
            .map(|e| i128::from(e.amount))
            .sum()
    }
}

fn two_sided(
    txn_type: TxnType,
    credit: LedgerAccount,
    debit: LedgerAccount,
    amount: Micros,
) -> Result<Posting, LedgerError> {
    if amount.0 <= 0 {
        return Err(LedgerError::NonPositiveAmount);
    }
    Posting::new(
        txn_type,
        vec![
            Entry {
                account: credit,
                amount: amount.0,
            },
            Entry {
                account: debit,
                amount: -amount.0,
            },
        ],
    )
}

/// Card money credited to `wallet`: the wallet gains `amount`, card clearing gives it.
pub fn topup(wallet: &AccountId, amount: Micros) -> Result<Posting, LedgerError> {
    two_sided(
        TxnType::Topup,
        LedgerAccount::Wallet(wallet.clone()),
        LedgerAccount::CardClearing,
        amount,
    )
}

/// A line charge debited from `wallet` to revenue.
pub fn line_charge(wallet: &AccountId, amount: Micros) -> Result<Posting, LedgerError> {
    two_sided(
        TxnType::LineCharge,
        LedgerAccount::Revenue,
        LedgerAccount::Wallet(wallet.clone()),
        amount,
    )
}

/// Meta's charge for one Cloud API message debited from `wallet` to revenue (wagate pays Meta
/// from it).
pub fn message_charge(wallet: &AccountId, amount: Micros) -> Result<Posting, LedgerError> {
    two_sided(
        TxnType::MessageCharge,
        LedgerAccount::Revenue,
        LedgerAccount::Wallet(wallet.clone()),
        amount,
    )
}

/// A virtual number (or a rental's extension) debited from `wallet` to revenue (wagate pays
/// the provider from it).
pub fn number_charge(wallet: &AccountId, amount: Micros) -> Result<Posting, LedgerError> {
    two_sided(
        TxnType::NumberCharge,
        LedgerAccount::Revenue,
        LedgerAccount::Wallet(wallet.clone()),
        amount,
    )
}

/// A manual correction of `wallet` by a signed `amount` against the adjustments account.
pub fn adjustment(wallet: &AccountId, amount: Micros) -> Result<Posting, LedgerError> {
    if amount.0 >= 0 {
        two_sided(
            TxnType::Adjustment,
            LedgerAccount::Wallet(wallet.clone()),
            LedgerAccount::Adjustments,
            amount,
        )
    } else {
        let positive = amount.0.checked_neg().ok_or(LedgerError::Overflow)?;
        two_sided(
            TxnType::Adjustment,
            LedgerAccount::Adjustments,
            LedgerAccount::Wallet(wallet.clone()),
            Micros(positive),
        )
    }
}

/// The posting that undoes `posting`: every entry negated. Reversing a line, message or
/// number charge is a `refund`; reversing anything else is an `adjustment`.
pub fn reversal(posting: &Posting) -> Result<Posting, LedgerError> {
    let txn_type = match posting.txn_type {
        TxnType::LineCharge | TxnType::MessageCharge | TxnType::NumberCharge => TxnType::Refund,
        TxnType::Topup | TxnType::Adjustment | TxnType::Refund => TxnType::Adjustment,
    };
    let entries = posting
        .entries
        .iter()
        .map(|e| {
            Ok(Entry {
                account: e.account.clone(),
                amount: e.amount.checked_neg().ok_or(LedgerError::Overflow)?,
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    Posting::new(txn_type, entries)
}

/// `wallet`'s balance after `posting`, refused if it would fall below zero. The store applies
/// it with the same rule (and a database constraint) in the transaction that records it.
pub fn apply(balance: i64, posting: &Posting, wallet: &AccountId) -> Result<i64, LedgerError> {
    let after = i128::from(balance) + posting.wallet_delta(wallet);
    if after < 0 {
        return Err(LedgerError::InsufficientBalance {
            balance,
            shortfall: i64::try_from(-after).map_err(|_| LedgerError::Overflow)?,
        });
    }
    i64::try_from(after).map_err(|_| LedgerError::Overflow)
}

/// An account's auto top-up setting (present only when enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoTopup {
    /// A debit that leaves the balance below this triggers a top-up.
    pub threshold: Micros,
    /// How much each top-up charges the card.
    pub amount: Micros,
}

/// How a line charge of `price` is paid (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Funding {
    /// The wallet covers it: debit only.
    FromWalletOnly,
    /// Auto top-up is on: charge the card `amount` (whole cents, at least the shortfall),
    /// credit it to the wallet, then debit the price.
    TopUpFirst {
        /// The card charge.
        amount: Micros,
    },
    /// No auto top-up: charge the card `amount` (the price, rounded up to a cent), credit it
    /// to the wallet as a `topup` naming the line, then debit the price.
    ChargeCardForPrice {
        /// The card charge.
        amount: Micros,
    },
}

/// `m` rounded up to a whole cent (card charges are in cents).
pub fn ceil_to_cent(m: Micros) -> Micros {
    Micros::from_cents(m.to_cents_ceil())
}

/// How to pay a line charge of `price` from a wallet holding `balance`: from the wallet if it
/// covers the price; otherwise with auto top-up on, a card top-up of
/// `max(auto_topup.amount, shortfall)`; otherwise a card charge for the price. Card amounts
/// are rounded up to a cent, so the wallet never goes negative after the debit.
pub fn plan_charge_funding(
    balance: Micros,
    price: Micros,
    auto_topup: Option<AutoTopup>,
) -> Funding {
    if balance >= price {
        return Funding::FromWalletOnly;
    }
    let shortfall = ceil_to_cent(Micros(price.0.saturating_sub(balance.0)));
    match auto_topup {
        Some(at) => Funding::TopUpFirst {
            amount: ceil_to_cent(at.amount).max(shortfall),
        },
        None => Funding::ChargeCardForPrice {
            amount: ceil_to_cent(price).max(shortfall),
        },
    }
}

/// After a debit left the wallet at `balance_after`: the card top-up to make, if auto top-up
/// is on, the balance is below its threshold and its amount is positive (rounded up to a
/// cent).
pub fn auto_topup_after_debit(
    balance_after: Micros,
    auto_topup: Option<AutoTopup>,
) -> Option<Micros> {
    let at = auto_topup?;
    (balance_after < at.threshold && at.amount.0 > 0).then(|| ceil_to_cent(at.amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wallet() -> AccountId {
        AccountId::parse("acct_test").expect("valid id")
    }

    fn dollars(s: &str) -> Micros {
        Micros::parse(s).expect("valid amount")
    }

    #[test]
    fn postings_must_balance() {
        let w = LedgerAccount::Wallet(wallet());
        let unbalanced = vec![
            Entry {
                account: w.clone(),
                amount: 5,
            },
            Entry {
                account: LedgerAccount::Revenue,
                amount: -4,
            },
        ];
        assert_eq!(
            Posting::new(TxnType::Adjustment, unbalanced),
            Err(LedgerError::Unbalanced { sum: 1 })
        );
        assert_eq!(
            Posting::new(
                TxnType::Adjustment,
                vec![Entry {
                    account: w,
                    amount: 0
                }]
            ),
            Err(LedgerError::TooFewEntries)
        );
        assert_eq!(
            topup(&wallet(), Micros::ZERO),
            Err(LedgerError::NonPositiveAmount)
        );
        assert_eq!(
            line_charge(&wallet(), Micros(-1)),
            Err(LedgerError::NonPositiveAmount)
        );
    }

    #[test]
    fn a_charge_never_takes_the_wallet_below_zero() {
        let w = wallet();
        let p = topup(&w, dollars("10")).expect("valid");
        let balance = apply(0, &p, &w).expect("credit");
        assert_eq!(balance, 10_000_000);
        let charge = line_charge(&w, dollars("15")).expect("valid");
        assert_eq!(
            apply(balance, &charge, &w),
            Err(LedgerError::InsufficientBalance {
                balance,
                shortfall: 5_000_000
            })
        );
        let refund = reversal(&charge).expect("valid");
        assert_eq!(refund.txn_type(), TxnType::Refund);
        assert_eq!(apply(balance, &refund, &w), Ok(25_000_000));
        assert_eq!(reversal(&p).expect("valid").txn_type(), TxnType::Adjustment);
        // Another wallet is unaffected by this posting.
        let other = AccountId::parse("acct_other").expect("valid id");
        assert_eq!(apply(7, &charge, &other), Ok(7));
    }

    #[test]
    fn adjustments_go_both_ways() {
        let w = wallet();
        assert_eq!(
            apply(0, &adjustment(&w, dollars("2")).expect("valid"), &w),
            Ok(2_000_000)
        );
        let down = adjustment(&w, dollars("-2")).expect("valid");
        assert_eq!(apply(2_000_000, &down, &w), Ok(0));
        assert_eq!(adjustment(&w, Micros(i64::MIN)), Err(LedgerError::Overflow));
    }

    #[test]
    fn funding_examples_from_the_spec() {
        let balance = dollars("3.00");
        let price = dollars("15.00");
        let at = |amount: &str| AutoTopup {
            threshold: dollars("10"),
            amount: dollars(amount),
        };
        assert_eq!(
            plan_charge_funding(balance, price, Some(at("50"))),
            Funding::TopUpFirst {
                amount: dollars("50.00")
            }
        );
        assert_eq!(
            plan_charge_funding(balance, price, Some(at("5"))),
            Funding::TopUpFirst {
                amount: dollars("12.00")
            }
        );
        assert_eq!(
            plan_charge_funding(balance, price, None),
            Funding::ChargeCardForPrice {
                amount: dollars("15.00")
            }
        );
        assert_eq!(
            plan_charge_funding(price, price, None),
            Funding::FromWalletOnly
        );
    }

    #[test]
    fn shortfalls_round_up_to_a_cent() {
        let at = AutoTopup {
            threshold: Micros::ZERO,
            amount: dollars("1"),
        };
        assert_eq!(
            plan_charge_funding(dollars("2.9999"), dollars("15"), Some(at)),
            Funding::TopUpFirst {
                amount: dollars("12.01")
            }
        );
    }

    #[test]
    fn auto_topup_fires_below_the_threshold_only() {
        let at = Some(AutoTopup {
            threshold: dollars("10"),
            amount: dollars("50"),
        });
        assert_eq!(
            auto_topup_after_debit(dollars("9.99"), at),
            Some(dollars("50"))
        );
        assert_eq!(auto_topup_after_debit(dollars("10"), at), None);
        assert_eq!(auto_topup_after_debit(Micros::ZERO, None), None);
    }

    #[test]
    fn transaction_type_names() {
        let names: Vec<&str> = [
            TxnType::Topup,
            TxnType::LineCharge,
            TxnType::Adjustment,
            TxnType::Refund,
            TxnType::MessageCharge,
            TxnType::NumberCharge,
        ]
        .iter()
        .map(|t| t.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "topup",
                "line_charge",
                "adjustment",
                "refund",
                "message_charge",
                "number_charge"
            ]
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Topup(i64),
        Charge(i64),
        Reverse(usize),
        /// A number bought (a verification or a rental's first hours).
        NumberCharge(i64),
        /// A number's refund (a verification expired or canceled without a code).
        NumberRefund(usize),
        /// A rental extended: another number charge.
        Extend(i64),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (1i64..100_000_000).prop_map(Op::Topup),
                (1i64..100_000_000).prop_map(Op::Charge),
                any::<usize>().prop_map(Op::Reverse),
                (1i64..10_000_000).prop_map(Op::NumberCharge),
                any::<usize>().prop_map(Op::NumberRefund),
                (1i64..10_000_000).prop_map(Op::Extend),
            ],
            0..60,
        )
    }

    proptest! {
        #[test]
        fn the_ledger_balances_and_the_wallet_never_goes_negative(ops in ops()) {
            let w = wallet();
            let mut balance: i64 = 0;
            let mut journal: Vec<Posting> = Vec::new();
            // Number charges not refunded yet (journal positions): each is refunded at most
            // once, as the store's unique `reverses` key makes it.
            let mut refundable: Vec<usize> = Vec::new();
            for op in ops {
                let mut refunds = None;
                let posting = match op {
                    Op::Topup(a) => topup(&w, Micros(a)).expect("positive"),
                    Op::Charge(a) => line_charge(&w, Micros(a)).expect("positive"),
                    Op::Reverse(i) if !journal.is_empty() => {
                        reversal(&journal[i % journal.len()]).expect("reversible")
                    }
                    Op::NumberCharge(a) | Op::Extend(a) => {
                        number_charge(&w, Micros(a)).expect("positive")
                    }
                    Op::NumberRefund(i) if !refundable.is_empty() => {
                        let at = refundable.swap_remove(i % refundable.len());
                        refunds = Some(at);
                        let refund = reversal(&journal[at]).expect("reversible");
                        prop_assert_eq!(refund.txn_type(), TxnType::Refund);
                        refund
                    }
                    Op::Reverse(_) | Op::NumberRefund(_) => continue,
                };
                let is_number_order = matches!(op, Op::NumberCharge(_));
                match apply(balance, &posting, &w) {
                    Ok(after) => {
                        balance = after;
                        if is_number_order {
                            refundable.push(journal.len());
                        }
                        journal.push(posting);
                    }
                    // A refund only gives money back: it is never refused.
                    Err(_) if refunds.is_some() => prop_assert!(false, "a refund was refused"),
                    Err(LedgerError::InsufficientBalance { .. }) => {
                        prop_assert!(i128::from(balance) + posting.wallet_delta(&w) < 0);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
                prop_assert!(balance >= 0);
                let sum: i128 = journal.iter().map(|p| p.wallet_delta(&w)).sum();
                prop_assert_eq!(sum, i128::from(balance));
            }
            for p in &journal {
                prop_assert_eq!(p.entries().iter().map(|e| i128::from(e.amount)).sum::<i128>(), 0);
            }
        }

        #[test]
        fn funding_always_leaves_the_wallet_non_negative(
            balance in 0i64..100_000_000,
            price in 1i64..100_000_000,
            auto in prop::option::of((0i64..100_000_000, 0i64..100_000_000)),
        ) {
            let w = wallet();
            let auto = auto.map(|(t, a)| AutoTopup { threshold: Micros(t), amount: Micros(a) });
            let shortfall = (price - balance).max(0);
            let mut b = balance;
            match plan_charge_funding(Micros(balance), Micros(price), auto) {
                Funding::FromWalletOnly => prop_assert!(balance >= price),
                Funding::TopUpFirst { amount } | Funding::ChargeCardForPrice { amount } => {
                    prop_assert!(amount.0 >= shortfall);
                    prop_assert_eq!(amount.0 % 10_000, 0, "whole cents");
                    if let (Some(at), Funding::TopUpFirst { .. }) =
                        (auto, plan_charge_funding(Micros(balance), Micros(price), auto))
                    {
                        prop_assert!(amount >= ceil_to_cent(at.amount));
                    }
                    b = apply(b, &topup(&w, amount).expect("positive"), &w).expect("credit");
                }
            }
            let after = apply(b, &line_charge(&w, Micros(price)).expect("positive"), &w);
            prop_assert!(matches!(after, Ok(x) if x >= 0));
        }
    }
}
