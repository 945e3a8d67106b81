//! Who may do what in a group: the roles (`owner`, `admin`, `member`), a group's settings and
//! the one rule table every membership and admin command is judged by, whoever sends it (the
//! persister applies it; Django's commands, which name no actor, act as the system and are not
//! judged). Pure: the caller looks the roles up.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ErrorCode, rules::Refusal};

/// A member's standing in a group. A private chat's two members are equal: both `member`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The one who runs the group (its creator, until they hand it over): appoints and
    /// dismisses admins, hands ownership over, deletes the group.
    Owner,
    /// Adds and removes members, renames the group, changes its settings, deletes anyone's
    /// message in it.
    Admin,
    /// Sends, reacts and leaves; adds others only when the group's `members_can_add` is on.
    Member,
}

impl Role {
    /// The name stored in `chat_members.role` and sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Reads a stored or wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// Reads a client's role, refusing an unknown one with `invalid_role`.
    pub fn from_request(name: &str) -> Result<Role, Refusal> {
        Role::parse(name).ok_or_else(|| {
            Refusal::new(
                ErrorCode::InvalidRole,
                "role must be \"owner\", \"admin\" or \"member\"",
            )
        })
    }
}

/// A group's settings.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    schemars::JsonSchema,
)]
pub struct GroupSettings {
    /// Whether plain members may add others (off by default; admins and the owner always may).
    #[serde(default)]
    pub members_can_add: bool,
}

/// A change of a group's settings: each field present is set, each absent kept.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    schemars::JsonSchema,
)]
pub struct SettingsChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_can_add: Option<bool>,
}

impl GroupSettings {
    /// These settings with `change` applied.
    pub fn with(self, change: SettingsChange) -> GroupSettings {
        GroupSettings {
            members_can_add: change.members_can_add.unwrap_or(self.members_can_add),
        }
    }
}

/// What a member asks to do in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAction {
    /// Add users to the group.
    AddMembers,
    /// Remove another member, who has the role `target` (`Member` for one already gone).
    Remove { target: Role },
    /// Leave the group.
    Leave,
    /// Rename the group or change its settings.
    Update,
    /// Delete a message of another member.
    DeleteOthersMessage,
    /// Give `target` (who has `current`) the role `to`; `own` when it is the actor's own role.
    SetRole { current: Role, to: Role, own: bool },
    /// Delete the group and its history.
    DeleteGroup,
    /// Pin or unpin a message.
    Pin,
}

/// Whether a member with `role` may do `action` in a group with `settings`: `forbidden` naming
/// the role it needs, or `owner_required` for a change that would leave the group without
/// its owner.
pub fn authorize(role: Role, action: GroupAction, settings: GroupSettings) -> Result<(), Refusal> {
    let needs = |what: &str, role: &str| {
        Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("{what} needs the {role} role"),
        ))
    };
    let admin = matches!(role, Role::Owner | Role::Admin);
    match action {
        GroupAction::Leave => Ok(()),
        GroupAction::AddMembers if admin || settings.members_can_add => Ok(()),
        GroupAction::AddMembers => needs(
            "adding members (members_can_add is off in this group)",
            "admin",
        ),
        GroupAction::Remove {
            target: Role::Owner,
        } => Err(Refusal::new(
            ErrorCode::Forbidden,
            "the owner cannot be removed: only they can leave or hand the group over",
        )),
        GroupAction::Remove {
            target: Role::Admin,
        } if role != Role::Owner => needs("removing an admin", "owner"),
        GroupAction::Remove { .. } if admin => Ok(()),
        GroupAction::Remove { .. } => needs("removing a member", "admin"),
        GroupAction::Update if admin => Ok(()),
        GroupAction::Update => needs("renaming the group or changing its settings", "admin"),
        GroupAction::DeleteOthersMessage if admin => Ok(()),
        GroupAction::DeleteOthersMessage => needs("deleting another member's message", "admin"),
        GroupAction::SetRole { .. } if role != Role::Owner => {
            needs("appointing or dismissing admins", "owner")
        }
        GroupAction::SetRole {
            own: true,
            to: Role::Admin | Role::Member,
            ..
        } => Err(Refusal::new(
            ErrorCode::OwnerRequired,
            "a group keeps its owner: hand ownership to another member (role \"owner\") instead",
        )),
        GroupAction::SetRole { .. } => Ok(()),
        GroupAction::DeleteGroup if role == Role::Owner => Ok(()),
        GroupAction::DeleteGroup => needs("deleting the group", "owner"),
        GroupAction::Pin if admin => Ok(()),
        GroupAction::Pin => needs("pinning or unpinning a message", "admin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFF: GroupSettings = GroupSettings {
        members_can_add: false,
    };
    const ON: GroupSettings = GroupSettings {
        members_can_add: true,
    };

    fn set(current: Role, to: Role) -> GroupAction {
        GroupAction::SetRole {
            current,
            to,
            own: false,
        }
    }

    /// The table: owner, admin, member against every action.
    #[test]
    fn the_rules_by_role() {
        use GroupAction::*;
        use Role::*;
        // (action, settings, owner, admin, member)
        let table: &[(GroupAction, GroupSettings, bool, bool, bool)] = &[
            (AddMembers, OFF, true, true, false),
            (AddMembers, ON, true, true, true),
            (Remove { target: Member }, OFF, true, true, false),
            (Remove { target: Admin }, OFF, true, false, false),
            (Remove { target: Owner }, OFF, false, false, false),
            (Leave, OFF, true, true, true),
            (Update, OFF, true, true, false),
            (Update, ON, true, true, false),
            (DeleteOthersMessage, OFF, true, true, false),
            (set(Member, Admin), OFF, true, false, false),
            (set(Admin, Member), OFF, true, false, false),
            (set(Member, Owner), OFF, true, false, false),
            (DeleteGroup, OFF, true, false, false),
            (Pin, OFF, true, true, false),
            (Pin, ON, true, true, false),
        ];
        for (action, settings, owner, admin, member) in table {
            for (role, allowed) in [(Owner, owner), (Admin, admin), (Member, member)] {
                let answer = authorize(role, *action, *settings);
                assert_eq!(answer.is_ok(), *allowed, "{role:?} {action:?} {settings:?}");
                if let Err(refusal) = answer {
                    assert_eq!(refusal.code, ErrorCode::Forbidden, "{role:?} {action:?}");
                }
            }
        }
    }

    #[test]
    fn a_refusal_names_the_role_it_needs() {
        let refusal = authorize(Role::Member, GroupAction::Update, OFF).unwrap_err();
        assert!(refusal.detail.contains("admin role"), "{}", refusal.detail);
        let refusal = authorize(Role::Admin, GroupAction::DeleteGroup, OFF).unwrap_err();
        assert!(refusal.detail.contains("owner role"), "{}", refusal.detail);
    }

    #[test]
    fn the_owner_cannot_step_down_without_a_successor() {
        for to in [Role::Admin, Role::Member] {
            let own = GroupAction::SetRole {
                current: Role::Owner,
                to,
                own: true,
            };
            assert_eq!(
                authorize(Role::Owner, own, OFF).map_err(|r| r.code),
                Err(ErrorCode::OwnerRequired)
            );
        }
        let again = GroupAction::SetRole {
            current: Role::Owner,
            to: Role::Owner,
            own: true,
        };
        assert!(authorize(Role::Owner, again, OFF).is_ok(), "a no-op");
    }

    #[test]
    fn roles_read_back_and_unknown_ones_are_refused() {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        for bad in ["", "Admin", "root", "owner\0", " admin"] {
            assert_eq!(
                Role::from_request(bad).map_err(|r| r.code),
                Err(ErrorCode::InvalidRole),
                "{bad:?}"
            );
        }
    }

    fn any_role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Owner), Just(Role::Admin), Just(Role::Member)]
    }

    fn any_action() -> impl Strategy<Value = GroupAction> {
        prop_oneof![
            Just(GroupAction::AddMembers),
            any_role().prop_map(|target| GroupAction::Remove { target }),
            Just(GroupAction::Leave),
            Just(GroupAction::Update),
            Just(GroupAction::DeleteOthersMessage),
            (any_role(), any_role(), any::<bool>())
                .prop_map(|(current, to, own)| GroupAction::SetRole { current, to, own }),
            Just(GroupAction::DeleteGroup),
        ]
    }

    proptest! {
        /// Rank only ever helps: whatever an admin may do the owner may, whatever a member
        /// may do an admin may (a group's owner is never removed, by anyone); and a refusal
        /// is `forbidden` or `owner_required`, nothing else.
        #[test]
        fn a_higher_role_may_do_what_a_lower_one_may(
            action in any_action(),
            members_can_add in any::<bool>(),
        ) {
            let settings = GroupSettings { members_can_add };
            let member = authorize(Role::Member, action, settings);
            let admin = authorize(Role::Admin, action, settings);
            let owner = authorize(Role::Owner, action, settings);
            if member.is_ok() {
                prop_assert!(admin.is_ok());
            }
            let own_step_down = matches!(action, GroupAction::SetRole { own: true, .. });
            if admin.is_ok() && !own_step_down {
                prop_assert!(owner.is_ok());
            }
            for refusal in [member, admin, owner].into_iter().filter_map(Result::err) {
                prop_assert!(matches!(
                    refusal.code,
                    ErrorCode::Forbidden | ErrorCode::OwnerRequired
                ));
            }
        }
    }
}
