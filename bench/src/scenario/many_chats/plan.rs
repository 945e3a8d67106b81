//! Who is in which chat: every user in the same number of private chats and small groups,
//! drawn from a seeded shuffle so that any slice of users (the online ones) is spread over
//! the chats like any other, and the same seed gives the same chats.

/// A chat to create: members by user index, the first one creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedChat {
    pub members: Vec<usize>,
    pub is_group: bool,
}

/// The shape asked for on the command line.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub users: usize,
    pub chats_per_user: usize,
    /// Of each user's chats, how many are private (the rest are groups).
    pub private_per_user: usize,
    pub group_size: usize,
    pub seed: u64,
}

impl Shape {
    /// Whether the shape can be built: distinct private partners need more users than
    /// private chats per user, and an odd count needs an even number of users.
    pub fn check(&self) -> Result<(), String> {
        if self.users < 2 {
            return Err("--users must be at least 2".into());
        }
        if self.private_per_user > self.chats_per_user {
            return Err("more private chats than chats per user".into());
        }
        if self.private_per_user > 0 && self.users <= self.private_per_user + 1 {
            return Err("--users must exceed the private chats per user by 2".into());
        }
        if self.private_per_user % 2 == 1 && self.users % 2 == 1 {
            return Err("an odd number of private chats per user needs an even --users".into());
        }
        if self.private_per_user < self.chats_per_user
            && !(2..=self.users).contains(&self.group_size)
        {
            return Err("--group-size must be between 2 and --users".into());
        }
        Ok(())
    }
}

/// Every chat of the shape: the private chats first, then the groups.
///
/// Private chats: user `perm[i]` with `perm[i + k]` for k = 1..=p/2 (a ring of each
/// distance, so every user has two partners per distance and no pair repeats), and for an
/// odd p the opposite user `perm[i + n/2]`. Groups: one fresh shuffle per group a user is
/// in, cut into groups of `group_size` (a remainder too small joins the last group).
pub fn plan(shape: &Shape) -> Vec<PlannedChat> {
    let n = shape.users;
    let p = shape.private_per_user;
    let mut rng = SplitMix64(shape.seed);
    let mut chats = Vec::new();
    if p > 0 {
        let perm = shuffled(n, &mut rng);
        for k in 1..=p / 2 {
            for i in 0..n {
                chats.push(PlannedChat {
                    members: vec![perm[i], perm[(i + k) % n]],
                    is_group: false,
                });
            }
        }
        if p % 2 == 1 {
            for i in 0..n / 2 {
                chats.push(PlannedChat {
                    members: vec![perm[i], perm[i + n / 2]],
                    is_group: false,
                });
            }
        }
    }
    for _ in p..shape.chats_per_user {
        let perm = shuffled(n, &mut rng);
        for group in crate::scenario::rate::partition(n, shape.group_size) {
            chats.push(PlannedChat {
                members: group.into_iter().map(|i| perm[i]).collect(),
                is_group: true,
            });
        }
    }
    chats
}

/// `0..n` in a random order (Fisher–Yates).
pub fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64): the plan needs
/// reproducible shuffles, not cryptography.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is far below what a benchmark notices).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn shape(users: usize, chats: usize, private: usize, group: usize) -> Shape {
        Shape {
            users,
            chats_per_user: chats,
            private_per_user: private,
            group_size: group,
            seed: 7,
        }
    }

    fn chats_per_user(users: usize, chats: &[PlannedChat]) -> Vec<usize> {
        let mut count = vec![0; users];
        for chat in chats {
            for &m in &chat.members {
                count[m] += 1;
            }
        }
        count
    }

    #[test]
    fn every_user_is_in_the_asked_number_of_chats() {
        for (users, chats, private, group) in [(1000, 10, 5, 5), (20, 10, 4, 3), (6, 3, 3, 2)] {
            let planned = plan(&shape(users, chats, private, group));
            assert!(
                chats_per_user(users, &planned).iter().all(|&c| c == chats),
                "{users} users, {chats} chats, {private} private"
            );
            let privates = planned.iter().filter(|c| !c.is_group).count();
            assert_eq!(privates, users * private / 2);
        }
    }

    #[test]
    fn private_pairs_never_repeat_and_groups_have_their_size() {
        let planned = plan(&shape(100, 10, 7, 5));
        let mut pairs = HashSet::new();
        for chat in &planned {
            let mut m = chat.members.clone();
            m.sort_unstable();
            assert!(m.windows(2).all(|w| w[0] != w[1]), "a member twice: {m:?}");
            if chat.is_group {
                assert_eq!(m.len(), 5);
            } else {
                assert!(pairs.insert((m[0], m[1])), "pair {m:?} twice");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_chats() {
        let a = plan(&shape(50, 4, 2, 4));
        assert_eq!(a, plan(&shape(50, 4, 2, 4)));
        let other = Shape {
            seed: 8,
            ..shape(50, 4, 2, 4)
        };
        assert_ne!(a, plan(&other));
    }

    #[test]
    fn impossible_shapes_are_refused() {
        assert!(shape(1000, 10, 5, 5).check().is_ok());
        assert!(
            shape(5, 10, 5, 5).check().is_err(),
            "odd users, odd private"
        );
        assert!(
            shape(4, 4, 4, 2).check().is_err(),
            "too few users for 4 partners"
        );
        assert!(shape(10, 4, 2, 1).check().is_err(), "groups of 1");
        assert!(
            shape(10, 2, 3, 2).check().is_err(),
            "more private than chats"
        );
    }
}
