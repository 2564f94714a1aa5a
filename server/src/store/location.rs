//! Where the store lives, as `--db` names it: a file path (SQLite, the embedded default) or a
//! `postgres://` / `postgresql://` URL (PostgreSQL, for stateless web instances sharing one
//! store). A URL is checked when the flag is parsed, so a bad one stops the server at start-up
//! with a clear message; its password is never printed (not in `Debug`, not in `Display`, not in
//! the errors here).
//!
//! Concurrency: plain values, parsed once at start-up and then only read.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// The database a store is kept in.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (created, with its folder, when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgUrl),
}

/// A checked `postgres://` URL. Prints without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// The URL as given, password included: only ever handed to the client library.
    url: String,
    /// The same without its password, for messages and logs.
    shown: String,
}

impl PgUrl {
    /// Checks `url`: a `postgres://` or `postgresql://` URL that tokio-postgres accepts, without
    /// a TLS requirement (TLS is not built in). The error never contains the password.
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            // tokio-postgres names the part it could not read, never a value.
            format!(
                "not a valid PostgreSQL URL ({}); expected \
                 postgres://user[:password]@host[:port]/database",
                super::describe(&e)
            )
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(
                "sslmode=require: TLS to PostgreSQL is not built into Turnstile; connect over a \
                 private network, a Unix socket or a TLS tunnel, with sslmode=disable or prefer"
                    .into(),
            );
        }
        Ok(PgUrl {
            url: url.to_owned(),
            shown: redacted(&config),
        })
    }

    /// The client library's connection settings.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        // Checked in `parse`; parsing the same text again gives the same answer.
        self.url.parse().expect("a URL checked by PgUrl::parse")
    }
}

/// `postgres://user[:***]@host[:port],.../database`, from the parsed settings (so a password
/// given as `?password=` is left out too). Socket folders are percent-encoded, as in a URL.
fn redacted(c: &tokio_postgres::Config) -> String {
    let user = c.get_user().unwrap_or("");
    let password = if c.get_password().is_some() {
        ":***"
    } else {
        ""
    };
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(dir) => {
                    dir.to_string_lossy().replace('/', "%2F")
                }
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let db = c.get_dbname().unwrap_or("");
    format!("postgres://{user}{password}@{}/{db}", hosts.join(","))
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgUrl {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.shown)
    }
}

impl DbLocation {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; any other URL-like text
    /// (`scheme://...`) is refused; everything else is a SQLite file path.
    pub fn parse(s: &str) -> Result<DbLocation, String> {
        if s.trim().is_empty() {
            return Err("--db is empty: give a file path or a postgres:// URL".into());
        }
        if let Some((scheme, _)) = s.split_once("://") {
            let is_scheme = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if is_scheme {
                return match scheme.to_ascii_lowercase().as_str() {
                    // tokio-postgres reads the scheme in lower case only.
                    "postgres" | "postgresql" => {
                        PgUrl::parse(&format!("postgresql{}", &s[scheme.len()..]))
                            .map(DbLocation::Postgres)
                    }
                    other => Err(format!(
                        "--db takes a file path (SQLite) or a postgres:// URL; `{other}://` is \
                         not supported"
                    )),
                };
            }
        }
        Ok(DbLocation::Sqlite(PathBuf::from(s)))
    }
}

impl std::str::FromStr for DbLocation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DbLocation::parse(s)
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DbLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl fmt::Debug for DbLocation {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            DbLocation::Postgres(url) => write!(f, "Postgres({url})"),
        }
    }
}

/// `--db`'s parser for clap. clap's own message for a bad value repeats the value, and with it a
/// password; this one says only what is wrong.
#[derive(Clone, Copy, Debug, Default)]
pub struct DbLocationParser;

impl clap::builder::TypedValueParser for DbLocationParser {
    type Value = DbLocation;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<DbLocation, clap::Error> {
        let bad = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --db: {why}\n"),
            )
            .with_cmd(cmd)
        };
        match value.to_str() {
            Some(s) => DbLocation::parse(s).map_err(bad),
            // A path need not be UTF-8; a URL must be.
            None if value.as_encoded_bytes().windows(3).any(|w| w == b"://") => {
                Err(bad("a URL must be UTF-8".into()))
            }
            None => Ok(DbLocation::Sqlite(PathBuf::from(value))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sqlite_and_postgres_urls_are_postgres() {
        assert_eq!(
            DbLocation::parse("data/t.sqlite3").unwrap(),
            DbLocation::Sqlite("data/t.sqlite3".into())
        );
        assert_eq!(
            DbLocation::parse("/var/lib/turnstile/db").unwrap(),
            DbLocation::Sqlite("/var/lib/turnstile/db".into())
        );
        for url in [
            "postgres://turnstile@db.internal/turnstile",
            "postgresql://turnstile:s3cret@10.0.0.5:6432/turnstile?connect_timeout=5",
            "postgres://postgres@%2Ftmp%2Fpg/test",
            "POSTGRES://u@h/d",
        ] {
            assert!(
                matches!(DbLocation::parse(url), Ok(DbLocation::Postgres(_))),
                "{url}"
            );
        }
        let DbLocation::Postgres(url) =
            DbLocation::parse("postgresql://ann:s3cret@10.0.0.5:6432/chats").unwrap()
        else {
            unreachable!()
        };
        assert_eq!(url.config().get_dbname(), Some("chats"));
        assert_eq!(url.config().get_ports(), [6432]);
        assert_eq!(url.to_string(), "postgres://ann:***@10.0.0.5:6432/chats");
        let socket = PgUrl::parse("postgres://postgres@%2Ftmp%2Fpg/test").unwrap();
        assert_eq!(
            socket.to_string(),
            "postgres://postgres@%2Ftmp%2Fpg:5432/test"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_printing_the_password() {
        for bad in [
            "postgres://ann:s3cret@host:notaport/db",
            "postgres://ann:s3cret@host/db?nonsense=s3cret",
            "postgres://ann:s3cret@host/db?sslmode=require",
            "mysql://ann:s3cret@host/db",
            "",
        ] {
            let why = DbLocation::parse(bad).unwrap_err();
            assert!(!why.contains("s3cret"), "{bad}: {why}");
            assert!(
                why.contains("postgres://") || why.contains("sslmode"),
                "{why}"
            );
        }
    }

    #[test]
    fn the_password_never_prints() {
        for url in [
            "postgres://ann:s3cret@host/db",
            "postgres://ann@host/db?password=s3cret",
        ] {
            let loc = DbLocation::parse(url).unwrap();
            assert!(!format!("{loc} {loc:?}").contains("s3cret"), "{loc}");
        }
    }
}
