//! Typed row ids: a party's id is never a person's, and neither is a bare number past the
//! store. Each is the `bigint` identity of its table, read and written as such.

use std::fmt;

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id as stored (for a row just read, or a number given on the command line).
            pub const fn new(id: i64) -> Self {
                $name(id)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl postgres_types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &postgres_types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <i64 as postgres_types::ToSql>::accepts(ty)
            }

            postgres_types::to_sql_checked!();
        }

        impl<'a> postgres_types::FromSql<'a> for $name {
            fn from_sql(
                ty: &postgres_types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                i64::from_sql(ty, raw).map($name)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <i64 as postgres_types::FromSql>::accepts(ty)
            }
        }
    };
}

row_id!(
    /// A registered party (`parties.id`).
    PartyId
);
row_id!(
    /// A person (`persons.id`): the person behind a link value, never their number.
    PersonId
);
row_id!(
    /// One coverage (`coverages.id`).
    CoverageId
);

/// Who a disclosure was made to: a registered party, or the card's holder reading their own
/// data with their card (no party involved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    Party(PartyId),
    CardHolder,
}

impl Actor {
    /// The `party_id` column of `disclosures`: party ids are identities from 1, so 0 names the
    /// card holder there. Only the store reads and writes this form.
    pub const fn stored(self) -> i64 {
        match self {
            Actor::Party(id) => id.get(),
            Actor::CardHolder => 0,
        }
    }

    /// The actor of a stored `party_id`.
    pub const fn from_stored(party_id: i64) -> Self {
        if party_id == 0 {
            Actor::CardHolder
        } else {
            Actor::Party(PartyId::new(party_id))
        }
    }

    /// The party, unless it was the card's holder.
    pub const fn party(self) -> Option<PartyId> {
        match self {
            Actor::Party(id) => Some(id),
            Actor::CardHolder => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Actor, PartyId};

    #[test]
    fn the_card_holder_is_stored_as_no_party() {
        assert_eq!(Actor::CardHolder.stored(), 0);
        assert_eq!(Actor::from_stored(0), Actor::CardHolder);
        let party = Actor::Party(PartyId::new(7));
        assert_eq!(Actor::from_stored(party.stored()), party);
        assert_eq!(party.party(), Some(PartyId::new(7)));
    }

    #[test]
    fn ids_serialize_as_their_number() {
        assert_eq!(serde_json::to_string(&PartyId::new(42)).unwrap(), "42");
    }
}
