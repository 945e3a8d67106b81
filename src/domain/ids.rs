//! The identifiers everything else speaks of. Plain integers on the wire and in the database;
//! named here, at the bottom of the house, so that no layer has to import another for them.

/// A user id as Django knows it.
pub type UserId = i64;

/// A chat id.
pub type ChatId = i64;

/// A message id (the database's, increasing over time).
pub type MessageId = i64;
