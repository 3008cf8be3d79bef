//! A terminal chat client on `gochat::client::live`: it reconnects by itself, shows what it
//! missed while away, and never shows a message twice. Two terminals can chat with each
//! other and with people in the browser page.
//!
//! Run a server (`cargo run --release`), then in two terminals:
//!
//! ```sh
//! cargo run --example chat -- --user demo --password 111111
//! cargo run --example chat -- --user test --password 111111 --tcp 127.0.0.1:7001
//! ```
//!
//! Type a line to post it to the current room. `/join N` joins room N (and makes it current),
//! `/leave N` leaves it, `/room N` switches, `/history` shows the current room's last
//! messages (`/history dm` the private ones), `/to NAME text` sends a private message to
//! someone in the room, `/who` lists the room, `/quit` (or end of input) leaves.
//!
//! What others wrote is printed with control characters and bidirectional overrides taken
//! out: a message cannot move the cursor, clear the screen or reverse the line.

use clap::Parser;
use gochat::client::Client;
use gochat::client::live::{Endpoint, Live, LiveConfig, LiveEvent, Message, Range, Transport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chat from a terminal.
#[derive(Parser)]
struct Args {
    /// REST API address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// WebSocket address (used unless --tcp is given).
    #[arg(long, default_value = "127.0.0.1:7000")]
    ws: SocketAddr,
    /// Connect over raw TCP to this address instead of the WebSocket.
    #[arg(long)]
    tcp: Option<SocketAddr>,
    /// User name.
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    password: String,
    /// Create the account first.
    #[arg(long)]
    register: bool,
    /// Room to start in.
    #[arg(long, default_value_t = 1)]
    room: i64,
}

/// `s` safe to print on a terminal: control characters (escape sequences start with one)
/// and bidirectional overrides become U+FFFD.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn show(m: &Message) {
    let seq = m.seq.map(|s| format!("#{s} ")).unwrap_or_default();
    match &m.to {
        Some(to) => println!(
            "[private] {seq}{} → {}: {}",
            clean(&m.from.name),
            clean(&to.name),
            clean(&m.text)
        ),
        None => println!(
            "[room {}] {seq}{}: {}",
            m.room_id,
            clean(&m.from.name),
            clean(&m.text)
        ),
    }
}

/// What a typed line asks for.
enum Line<'a> {
    Quit,
    Who,
    Join(i64),
    Leave(i64),
    Switch(i64),
    History { private: bool },
    To(&'a str, &'a str),
    Post(&'a str),
    Usage(&'static str),
}

fn parse(line: &str) -> Line<'_> {
    let room = |arg: &str, usage| match arg.trim().parse::<i64>() {
        Ok(r) if r > 0 => Ok(r),
        _ => Err(Line::Usage(usage)),
    };
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "/quit" => Line::Quit,
        "/who" => Line::Who,
        "/join" => room(arg, "usage: /join ROOM").map_or_else(|u| u, Line::Join),
        "/leave" => room(arg, "usage: /leave ROOM").map_or_else(|u| u, Line::Leave),
        "/room" => room(arg, "usage: /room ROOM").map_or_else(|u| u, Line::Switch),
        "/history" => Line::History {
            private: arg.trim() == "dm",
        },
        "/to" => match arg.split_once(' ') {
            Some((name, text)) if !text.trim().is_empty() => Line::To(name, text),
            _ => Line::Usage("usage: /to NAME text"),
        },
        c if c.starts_with('/') => Line::Usage(
            "commands: /join N, /leave N, /room N, /history [dm], /to NAME text, /who, /quit",
        ),
        _ => Line::Post(line),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut client = Client::new(a.api);
    let me = if a.register {
        client.register(&a.user, &a.password).await?
    } else {
        client.login(&a.user, &a.password).await?
    };
    let endpoint = match a.tcp {
        Some(addr) => Endpoint {
            addr,
            transport: Transport::Tcp,
        },
        None => Endpoint {
            addr: a.ws,
            transport: Transport::WebSocket,
        },
    };
    let mut live = client.live(LiveConfig::new(endpoint, a.room)).await?;
    let mut room = a.room;
    println!(
        "signed in as {} (id {}) in room {room}; /join N, /leave N, /room N, /history, /to NAME text, /who, /quit",
        clean(&me.name),
        me.id
    );
    client.request_roster(room).await?;

    let mut roster: BTreeMap<String, i64> = BTreeMap::new(); // name → id
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if !run(parse(line.trim()), &live, &client, &mut room, &roster).await {
                    break;
                }
            }
            event = live.next_event() => match event {
                Some(LiveEvent::Message(m)) => show(&m),
                Some(LiveEvent::Roster { room_id, users }) if room_id == room => {
                    roster = users.iter().filter_map(|(id, name)| Some((name.clone(), id.parse().ok()?))).collect();
                    let names: Vec<String> = roster.keys().map(|n| clean(n)).collect();
                    println!("[in room {room}] {}", names.join(", "));
                }
                Some(LiveEvent::Joined { room_id, user }) => println!("[room {room_id}] {} joined", clean(&user.name)),
                Some(LiveEvent::Left { room_id, user }) => println!("[room {room_id}] {} left", clean(&user.name)),
                Some(LiveEvent::Reconnecting { after, reason, .. }) => println!("[reconnecting in {after:.1?}: {}]", clean(&reason)),
                Some(LiveEvent::Connected { reconnected: true, .. }) => println!("[reconnected]"),
                Some(LiveEvent::Recovered { messages }) if messages > 0 => println!("[recovered {messages} missed message(s)]"),
                Some(LiveEvent::HistoryReset { room_id }) => println!("[the server's history of {room_id} was reset]"),
                Some(LiveEvent::Closed { reason, .. }) => {
                    println!("[closed] {}", clean(&reason));
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    live.close().await;
    Ok(())
}

/// Carry out one typed line; `false` to quit.
async fn run(
    line: Line<'_>,
    live: &Live,
    client: &Client,
    room: &mut i64,
    roster: &BTreeMap<String, i64>,
) -> bool {
    let outcome = match line {
        Line::Quit => return false,
        Line::Usage(u) => {
            println!("{u}");
            Ok(())
        }
        Line::Who => client.request_roster(*room).await,
        Line::Join(r) => {
            let joined = live.join(r).await;
            if joined.is_ok() {
                *room = r;
                println!("[now in room {r}]");
                let _ = client.request_roster(r).await;
            }
            joined
        }
        Line::Leave(r) => live.leave(r).await,
        Line::Switch(r) => {
            *room = r;
            println!("[posting to room {r}]");
            Ok(())
        }
        Line::History { private } => {
            let of = if private { 0 } else { *room };
            live.history(of, Range::Latest, Some(20)).await.map(|page| {
                for m in &page.messages {
                    show(m);
                }
                if page.more {
                    println!("[older messages not shown]");
                }
            })
        }
        Line::To(name, text) => match roster.get(name) {
            Some(id) => live.send_private(*id, *room, text).await.map(drop),
            None => {
                println!("{} is not in the room (/who lists it)", clean(name));
                Ok(())
            }
        },
        Line::Post("") => Ok(()),
        Line::Post(text) => live.post(*room, text).await.map(drop),
    };
    if let Err(e) = outcome {
        println!("[not done: {e}]");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_overrides_cannot_reach_the_terminal() {
        assert_eq!(
            clean("hi\u{1b}[2Jthere\r\n"),
            "hi\u{FFFD}[2Jthere\u{FFFD}\u{FFFD}"
        );
        assert_eq!(clean("abc\u{202E}fed"), "abc\u{FFFD}fed");
        assert_eq!(clean("héllo 世界"), "héllo 世界");
    }

    #[test]
    fn commands_parse_and_bad_ones_say_how() {
        assert!(matches!(parse("/join 5"), Line::Join(5)));
        assert!(matches!(parse("/join x"), Line::Usage(_)));
        assert!(matches!(parse("/leave 0"), Line::Usage(_)));
        assert!(matches!(
            parse("/history dm"),
            Line::History { private: true }
        ));
        assert!(matches!(
            parse("/to bob hi there"),
            Line::To("bob", "hi there")
        ));
        assert!(matches!(parse("/to bob"), Line::Usage(_)));
        assert!(matches!(parse("/nope"), Line::Usage(_)));
        assert!(matches!(parse("hello"), Line::Post("hello")));
    }
}
