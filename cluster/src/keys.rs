//! The names of the shared queue's keys in Redis (the Lua scripts build the same names from the
//! same prefix; `lua/common.lua`'s `key`). Plain data.

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Every key starts with it and a colon.
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The stream of changes to the lines' order (every instance follows it).
    pub fn changes(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// A line's waiting jobs (a sorted set: score = fair tag, member = `seq:id`).
    pub fn line(&self, line: &str) -> String {
        format!("{}:line:{line}:q", self.prefix)
    }

    /// One job's record (a hash).
    pub fn job(&self, id: &str) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    /// One job's events (a stream; field `q` = seq, `e` = the event).
    pub fn events(&self, id: &str) -> String {
        format!("{}:ev:{id}", self.prefix)
    }

    /// One chat's wire messages as its owner instance numbered them (a stream; `s` = the
    /// message's seq, `q` = the job's last event it reflects, `m` = the message), replayed to a
    /// client that resumes through another instance.
    pub fn wire(&self, id: &str) -> String {
        format!("{}:wire:{id}", self.prefix)
    }

    /// The events of the jobs an instance owns (a stream; `j` = job id, `q`, `e`).
    pub fn instance(&self, owner: &str) -> String {
        format!("{}:inst:{owner}", self.prefix)
    }

    /// A worker's control messages (a stream; `j` = job id, `op` = `cancel`).
    pub fn control(&self, worker: &str) -> String {
        format!("{}:ctl:{worker}", self.prefix)
    }

    /// Running jobs by lease deadline (a sorted set).
    pub fn leases(&self) -> String {
        format!("{}:leases", self.prefix)
    }

    /// Web instances alive, by the time they last said so (a sorted set).
    pub fn instances(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    /// The jobs an instance owns that have not ended (a set).
    pub fn owned(&self, instance: &str) -> String {
        format!("{}:owned:{instance}", self.prefix)
    }
}

/// Splits a line member (`seq:id`, seq zero-padded) into its arrival number and job id.
pub fn split_member(member: &str) -> Option<(u64, &str)> {
    let (seq, id) = member.split_once(':')?;
    Some((seq.parse().ok()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_split_into_seq_and_id() {
        assert_eq!(split_member("0000000000000042:abc"), Some((42, "abc")));
        assert_eq!(split_member("x:abc"), None);
        assert_eq!(split_member("nocolon"), None);
    }
}
