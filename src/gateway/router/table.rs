//! The routing table: this instance's sockets, their users and their chats, and which sockets
//! an item goes to. Plain data, no NATS and no tasks: the router task feeds it and acts on its
//! answers (subscribe when a chat gets its first socket here, unsubscribe when it loses its
//! last).

use std::collections::{HashMap, HashSet};

use super::ConnId;
use crate::{domain::ChatId, domain::UserId, gateway::change_frames::Audience};

/// Presence changes whose sockets the table remembers (a change comes once per shared chat
/// and is told to a socket once); beyond it the memory starts again, at worst repeating one.
const PRESENCE_TOLD: usize = 10_000;

/// A socket refused because its user already has `MAX_SOCKETS_PER_USER` on this instance.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "user {user_id} already has {max} sockets open on this server (MAX_SOCKETS_PER_USER); \
     close one before opening another"
)]
pub struct TooManySockets {
    pub user_id: UserId,
    pub max: usize,
}

/// A routed socket: its user, whatever the router hands it items through, and its chats.
pub struct Socket<S> {
    pub user_id: UserId,
    pub sink: S,
    chats: HashSet<ChatId>,
}

/// What taking a socket out of one chat did.
#[derive(Debug, PartialEq, Eq)]
pub enum Leaving {
    /// The socket was not routed in that chat.
    NotThere,
    /// Out; other local sockets still have the chat.
    Left,
    /// Out, and it was the chat's last socket here: nothing needs the chat's events any more.
    LeftLast,
}

/// Sockets by id, by user and by chat, kept in step: a socket is in a chat's set exactly when
/// the chat is in the socket's, and a user's list holds exactly that user's sockets.
pub struct RoutingTable<S> {
    /// 0: no limit.
    max_sockets_per_user: usize,
    sockets: HashMap<ConnId, Socket<S>>,
    users: HashMap<UserId, Vec<ConnId>>,
    chats: HashMap<ChatId, HashSet<ConnId>>,
    /// The latest presence change per user and the sockets already told it.
    presence_told: HashMap<UserId, (u64, HashSet<ConnId>)>,
}

impl<S> RoutingTable<S> {
    /// A table that lets each user have `max_sockets_per_user` sockets (0: any number).
    pub fn new(max_sockets_per_user: usize) -> Self {
        RoutingTable {
            max_sockets_per_user,
            sockets: HashMap::new(),
            users: HashMap::new(),
            chats: HashMap::new(),
            presence_told: HashMap::new(),
        }
    }

    /// Adds the socket `conn` (a new id) of `user_id`, in no chat yet, unless its user already
    /// has the most sockets allowed.
    pub fn register(
        &mut self,
        conn: ConnId,
        user_id: UserId,
        sink: S,
    ) -> Result<(), TooManySockets> {
        debug_assert!(
            !self.sockets.contains_key(&conn),
            "socket {conn} registered twice"
        );
        let open = self.users.get(&user_id).map_or(0, Vec::len);
        if self.max_sockets_per_user != 0 && open >= self.max_sockets_per_user {
            let max = self.max_sockets_per_user;
            return Err(TooManySockets { user_id, max });
        }
        self.sockets.insert(
            conn,
            Socket {
                user_id,
                sink,
                chats: HashSet::new(),
            },
        );
        self.users.entry(user_id).or_default().push(conn);
        Ok(())
    }

    /// Routes `chat_id` to `conn`; `true` when it was not yet (`false` also for an unknown
    /// socket).
    pub fn attach(&mut self, conn: ConnId, chat_id: ChatId) -> bool {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return false;
        };
        if !socket.chats.insert(chat_id) {
            return false;
        }
        self.chats.entry(chat_id).or_default().insert(conn);
        true
    }

    /// Forgets `conn`; returns the chats it was the last local socket of.
    pub fn detach(&mut self, conn: ConnId) -> Vec<ChatId> {
        let Some(socket) = self.sockets.remove(&conn) else {
            return Vec::new();
        };
        if let Some(conns) = self.users.get_mut(&socket.user_id) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                self.users.remove(&socket.user_id);
            }
        }
        socket
            .chats
            .into_iter()
            .filter(|chat_id| self.take_out_of(conn, *chat_id))
            .collect()
    }

    /// Takes `conn` out of one chat (its user left it).
    pub fn leave(&mut self, conn: ConnId, chat_id: ChatId) -> Leaving {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return Leaving::NotThere;
        };
        if !socket.chats.remove(&chat_id) {
            return Leaving::NotThere;
        }
        match self.take_out_of(conn, chat_id) {
            true => Leaving::LeftLast,
            false => Leaving::Left,
        }
    }

    /// Removes `conn` from the chat's set; `true` when that emptied (and so removed) it.
    fn take_out_of(&mut self, conn: ConnId, chat_id: ChatId) -> bool {
        let Some(conns) = self.chats.get_mut(&chat_id) else {
            return false;
        };
        conns.remove(&conn);
        if !conns.is_empty() {
            return false;
        }
        self.chats.remove(&chat_id);
        true
    }

    /// The sockets in `chat_id` of its `audience`: every member's, or only one user's (found
    /// through that user's sockets, not by looking at every socket of the chat).
    pub fn recipients(
        &self,
        chat_id: ChatId,
        audience: Audience,
    ) -> impl Iterator<Item = (ConnId, &Socket<S>)> {
        let (everyone, one_user) = match audience {
            Audience::Members => (self.chats.get(&chat_id), None),
            Audience::User(user_id) => (None, self.users.get(&user_id)),
        };
        let everyone = everyone
            .into_iter()
            .flatten()
            .filter_map(|conn| Some((*conn, self.sockets.get(conn)?)));
        let users_sockets_in_chat = one_user.into_iter().flatten().filter_map(move |conn| {
            let socket = self.sockets.get(conn)?;
            socket.chats.contains(&chat_id).then_some((*conn, socket))
        });
        everyone.chain(users_sockets_in_chat)
    }

    /// The sockets in `chat_id` not yet told of `user_id`'s presence change `change_id`, and
    /// not the user's own; remembered as told from now on.
    pub fn untold_of_presence(
        &mut self,
        chat_id: ChatId,
        user_id: UserId,
        change_id: u64,
    ) -> Vec<ConnId> {
        let Some(conns) = self.chats.get(&chat_id) else {
            return Vec::new();
        };
        if self.presence_told.len() >= PRESENCE_TOLD && !self.presence_told.contains_key(&user_id) {
            self.presence_told.clear();
        }
        let told = self.presence_told.entry(user_id).or_default();
        if told.0 != change_id {
            *told = (change_id, HashSet::new());
        }
        conns
            .iter()
            .copied()
            .filter(|conn| {
                self.sockets
                    .get(conn)
                    .is_some_and(|socket| socket.user_id != user_id)
            })
            .filter(|conn| told.1.insert(*conn))
            .collect()
    }

    pub fn socket(&self, conn: ConnId) -> Option<&Socket<S>> {
        self.sockets.get(&conn)
    }

    /// The user's sockets here (none when the user has none).
    pub fn user_sockets(&self, user_id: UserId) -> &[ConnId] {
        self.users
            .get(&user_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether any local socket has `chat_id`.
    pub fn is_routed(&self, chat_id: ChatId) -> bool {
        self.chats.contains_key(&chat_id)
    }

    /// How many local sockets have `chat_id`.
    pub fn sockets_in(&self, chat_id: ChatId) -> usize {
        self.chats.get(&chat_id).map_or(0, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// A table whose sinks are the sockets' own ids, so a recipient names itself.
    type Table = RoutingTable<ConnId>;

    fn recipients(table: &Table, chat_id: ChatId, audience: Audience) -> BTreeSet<ConnId> {
        table
            .recipients(chat_id, audience)
            .map(|(conn, socket)| {
                assert_eq!(socket.sink, conn, "the socket's own sink");
                conn
            })
            .collect()
    }

    fn set<const N: usize>(conns: [ConnId; N]) -> BTreeSet<ConnId> {
        conns.into_iter().collect()
    }

    /// Sockets 1 and 2 of user 10, 3 of user 20, 4 of user 30; chat 100 has 1, 3 and 4, chat
    /// 200 has 2 and 3.
    fn two_chats() -> Table {
        let mut table = Table::new(0);
        for (conn, user) in [(1, 10), (2, 10), (3, 20), (4, 30)] {
            table.register(conn, user, conn).unwrap();
        }
        for (conn, chat) in [(1, 100), (3, 100), (4, 100), (2, 200), (3, 200)] {
            assert!(table.attach(conn, chat));
        }
        table
    }

    #[test]
    fn a_message_goes_to_every_socket_of_the_chat() {
        let table = two_chats();
        assert_eq!(recipients(&table, 100, Audience::Members), set([1, 3, 4]));
        assert_eq!(recipients(&table, 200, Audience::Members), set([2, 3]));
        assert_eq!(recipients(&table, 300, Audience::Members), set([]));
    }

    #[test]
    fn a_receipt_goes_to_its_authors_sockets_in_that_chat_only() {
        let table = two_chats();
        // User 10 has socket 1 in chat 100 and socket 2 in chat 200.
        assert_eq!(recipients(&table, 100, Audience::User(10)), set([1]));
        assert_eq!(recipients(&table, 200, Audience::User(10)), set([2]));
        assert_eq!(recipients(&table, 200, Audience::User(30)), set([]));
        assert_eq!(
            recipients(&table, 100, Audience::User(99)),
            set([]),
            "not here"
        );
    }

    #[test]
    fn the_first_socket_of_a_chat_and_its_last_are_told_apart() {
        let mut table = two_chats();
        assert!(!table.attach(1, 100), "already there");
        assert!(!table.attach(9, 100), "no such socket");
        assert_eq!(table.leave(1, 100), Leaving::Left);
        assert_eq!(table.leave(1, 100), Leaving::NotThere);
        assert_eq!(table.leave(3, 100), Leaving::Left);
        assert_eq!(table.leave(4, 100), Leaving::LeftLast);
        assert!(!table.is_routed(100));
        assert_eq!(recipients(&table, 100, Audience::Members), set([]));
        // Socket 3 is still in chat 200; detaching it leaves socket 2 there.
        assert_eq!(table.detach(3), Vec::<ChatId>::new());
        assert_eq!(table.detach(2), vec![200]);
        assert_eq!(table.detach(2), Vec::<ChatId>::new(), "forgotten once");
        assert!(!table.is_routed(200));
    }

    #[test]
    fn a_detached_socket_gets_nothing_and_leaves_its_users_list() {
        let mut table = two_chats();
        table.detach(1);
        assert_eq!(table.user_sockets(10), [2]);
        assert_eq!(recipients(&table, 100, Audience::Members), set([3, 4]));
        assert_eq!(recipients(&table, 100, Audience::User(10)), set([]));
        table.detach(2);
        assert_eq!(table.user_sockets(10), [] as [ConnId; 0]);
        assert!(table.socket(2).is_none());
    }

    #[test]
    fn a_user_gets_at_most_the_limit_of_sockets_and_a_closed_one_frees_its_place() {
        let mut table = Table::new(2);
        table.register(1, 10, 1).unwrap();
        table.register(2, 10, 2).unwrap();
        assert_eq!(
            table.register(3, 10, 3),
            Err(TooManySockets {
                user_id: 10,
                max: 2
            })
        );
        assert!(table.socket(3).is_none());
        table
            .register(4, 20, 4)
            .expect("another user's sockets count apart");
        table.detach(1);
        table.register(5, 10, 5).expect("a place was freed");
    }

    #[test]
    fn no_limit_when_the_limit_is_zero() {
        let mut table = Table::new(0);
        for conn in 0..100 {
            table.register(conn, 10, conn).unwrap();
        }
        assert_eq!(table.user_sockets(10).len(), 100);
    }

    #[test]
    fn a_presence_change_is_told_to_each_socket_once_and_never_to_its_user() {
        let mut table = two_chats();
        // User 20 (socket 3) shares chat 100 with sockets 1 and 4, chat 200 with socket 2.
        let mut first = table.untold_of_presence(100, 20, 7);
        first.sort();
        assert_eq!(first, [1, 4], "socket 3 is the user's own");
        let mut again = table.untold_of_presence(200, 20, 7);
        again.sort();
        assert_eq!(
            again,
            [2],
            "chat 200's other socket; 1 and 4 were told in chat 100"
        );
        assert_eq!(table.untold_of_presence(100, 20, 7), Vec::<ConnId>::new());
        let mut next = table.untold_of_presence(100, 20, 8);
        next.sort();
        assert_eq!(next, [1, 4], "a newer change is told again");
        assert_eq!(table.untold_of_presence(300, 20, 9), Vec::<ConnId>::new());
    }

    #[test]
    fn the_presence_memory_is_bounded() {
        let mut table = two_chats();
        for user in 0..=PRESENCE_TOLD as UserId {
            table.untold_of_presence(100, 1000 + user, 1);
        }
        assert!(table.presence_told.len() <= PRESENCE_TOLD);
        // A change told before the memory started again may be told once more, no worse.
        let mut repeated = table.untold_of_presence(100, 1000, 1);
        repeated.sort();
        assert_eq!(repeated, [1, 3, 4]);
    }

    /// One step of a socket's life, on a small space of ids so that steps collide.
    #[derive(Debug, Clone)]
    enum Step {
        Register { conn: ConnId, user: UserId },
        Attach { conn: ConnId, chat: ChatId },
        Leave { conn: ConnId, chat: ChatId },
        Detach { conn: ConnId },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..12u64, 0..4i64).prop_map(|(conn, user)| Step::Register { conn, user }),
            (0..12u64, 0..5i64).prop_map(|(conn, chat)| Step::Attach { conn, chat }),
            (0..12u64, 0..5i64).prop_map(|(conn, chat)| Step::Leave { conn, chat }),
            (0..12u64).prop_map(|conn| Step::Detach { conn }),
        ]
    }

    /// The same sockets as a plain list: what the table must agree with.
    #[derive(Default)]
    struct Model {
        sockets: HashMap<ConnId, (UserId, BTreeSet<ChatId>)>,
        /// Chats with a subscription, as the router task would keep them from the answers.
        subscribed: BTreeSet<ChatId>,
    }

    const LIMIT: usize = 2;

    proptest! {
        #[test]
        fn indexes_answers_and_subscriptions_agree_after_any_steps(
            steps in proptest::collection::vec(step(), 0..60)
        ) {
            let mut table = Table::new(LIMIT);
            let mut model = Model::default();
            for step in steps {
                match step {
                    Step::Register { conn, user } => {
                        if model.sockets.contains_key(&conn) {
                            continue; // ids are never reused
                        }
                        let open = model.sockets.values().filter(|(u, _)| *u == user).count();
                        let refused = table.register(conn, user, conn).is_err();
                        prop_assert_eq!(refused, open >= LIMIT);
                        if !refused {
                            model.sockets.insert(conn, (user, BTreeSet::new()));
                        }
                    }
                    Step::Attach { conn, chat } => {
                        let had_chat = model.sockets.values().any(|(_, c)| c.contains(&chat));
                        let added = table.attach(conn, chat);
                        let expected = model
                            .sockets
                            .get_mut(&conn)
                            .is_some_and(|(_, chats)| chats.insert(chat));
                        prop_assert_eq!(added, expected);
                        if added && !had_chat {
                            prop_assert!(model.subscribed.insert(chat), "first socket subscribes");
                        }
                    }
                    Step::Leave { conn, chat } => {
                        let was_in = model
                            .sockets
                            .get_mut(&conn)
                            .is_some_and(|(_, chats)| chats.remove(&chat));
                        let still = model.sockets.values().any(|(_, c)| c.contains(&chat));
                        let expected = match (was_in, still) {
                            (false, _) => Leaving::NotThere,
                            (true, true) => Leaving::Left,
                            (true, false) => Leaving::LeftLast,
                        };
                        let leaving = table.leave(conn, chat);
                        if leaving == Leaving::LeftLast {
                            prop_assert!(model.subscribed.remove(&chat));
                        }
                        prop_assert_eq!(leaving, expected);
                    }
                    Step::Detach { conn } => {
                        let emptied: BTreeSet<ChatId> = table.detach(conn).into_iter().collect();
                        let chats = model.sockets.remove(&conn).map(|(_, c)| c).unwrap_or_default();
                        let expected: BTreeSet<ChatId> = chats
                            .into_iter()
                            .filter(|chat| !model.sockets.values().any(|(_, c)| c.contains(chat)))
                            .collect();
                        for chat in &emptied {
                            prop_assert!(model.subscribed.remove(chat));
                        }
                        prop_assert_eq!(emptied, expected);
                    }
                }
                check_against(&table, &model)?;
            }
        }
    }

    /// The table's three indexes against the model, and every answer of `recipients`.
    fn check_against(table: &Table, model: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(table.sockets.len(), model.sockets.len());
        for (conn, (user, chats)) in &model.sockets {
            let socket = table.socket(*conn).expect("registered");
            prop_assert_eq!(socket.user_id, *user);
            prop_assert_eq!(
                &socket.chats.iter().copied().collect::<BTreeSet<_>>(),
                chats
            );
            prop_assert!(table.user_sockets(*user).contains(conn));
        }
        for (user, conns) in &table.users {
            prop_assert!(!conns.is_empty(), "no empty user list");
            let expected: BTreeSet<ConnId> = model
                .sockets
                .iter()
                .filter(|(_, (u, _))| u == user)
                .map(|(conn, _)| *conn)
                .collect();
            prop_assert_eq!(conns.len(), expected.len(), "no socket twice");
            prop_assert_eq!(conns.iter().copied().collect::<BTreeSet<_>>(), expected);
        }
        let routed: BTreeSet<ChatId> = table.chats.keys().copied().collect();
        prop_assert_eq!(
            &routed,
            &model.subscribed,
            "routed chats are the subscribed ones"
        );
        for chat in 0..5 {
            let members: BTreeSet<ConnId> = model
                .sockets
                .iter()
                .filter(|(_, (_, chats))| chats.contains(&chat))
                .map(|(conn, _)| *conn)
                .collect();
            prop_assert_eq!(table.sockets_in(chat), members.len());
            prop_assert_eq!(recipients(table, chat, Audience::Members), members.clone());
            for user in 0..4 {
                let own: BTreeSet<ConnId> = members
                    .iter()
                    .copied()
                    .filter(|conn| model.sockets[conn].0 == user)
                    .collect();
                prop_assert_eq!(recipients(table, chat, Audience::User(user)), own);
            }
        }
        Ok(())
    }
}
