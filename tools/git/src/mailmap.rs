//! `.mailmap`, read as git reads it: names and emails matched case-insensitively (libgit2's
//! own mailmap compares them case-sensitively, so `<Cap@X>` would not map `<CAP@x>`).

/// One line: who the commit says (`email`, optionally `name`, both lower-cased for matching)
/// and who that really is.
#[derive(Debug, Clone)]
struct Entry {
    proper_name: Option<String>,
    proper_email: Option<String>,
    commit_name: Option<String>,
    commit_email: String,
}

/// A parsed `.mailmap`.
#[derive(Debug, Clone, Default)]
pub struct MailMap {
    entries: Vec<Entry>,
}

impl MailMap {
    /// Parse `.mailmap` text: `Proper Name <proper@email> Commit Name <commit@email>` and its
    /// shorter forms; `#` starts a comment.
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            // Names are the text before each `<…>`; emails what is inside.
            let (mut names, mut emails, mut rest) = (Vec::new(), Vec::new(), line);
            while let Some(open) = rest.find('<') {
                let Some(close) = rest[open..].find('>') else { break };
                names.push(rest[..open].trim().to_owned());
                emails.push(rest[open + 1..open + close].trim().to_owned());
                rest = &rest[open + close + 1..];
            }
            let some = |s: &String| (!s.is_empty()).then(|| s.clone());
            let entry = match emails.len() {
                1 => Entry {
                    proper_name: some(&names[0]),
                    proper_email: None,
                    commit_name: None,
                    commit_email: emails[0].to_lowercase(),
                },
                2 => Entry {
                    proper_name: some(&names[0]),
                    proper_email: some(&emails[0]),
                    commit_name: some(&names[1]).map(|n| n.to_lowercase()),
                    commit_email: emails[1].to_lowercase(),
                },
                _ => continue,
            };
            entries.push(entry);
        }
        Self { entries }
    }

    /// The name and email git shows for a commit's `name <email>`: an entry naming the commit
    /// name too wins over one naming the email only; the last such line wins, as in git.
    pub fn resolve(&self, name: &str, email: &str) -> (String, String) {
        let (name_key, email_key) = (name.to_lowercase(), email.to_lowercase());
        let by_email = self.entries.iter().rev().filter(|e| e.commit_email == email_key);
        let best = by_email
            .clone()
            .find(|e| e.commit_name.as_deref() == Some(name_key.as_str()))
            .or_else(|| by_email.clone().find(|e| e.commit_name.is_none()));
        match best {
            Some(e) => (
                e.proper_name.clone().unwrap_or_else(|| name.to_owned()),
                e.proper_email.clone().unwrap_or_else(|| email.to_owned()),
            ),
            None => (name.to_owned(), email.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_maps_case_insensitively() {
        let map = MailMap::parse(
            "# comment\nCAPS Name <Cap@X>\n<new@x> <old@X>\nOther <o@x> Weird <WEIRD@X>\nBoth <b@x> <b-old@x>\n",
        );
        assert_eq!(map.resolve("Someone", "CAP@x"), ("CAPS Name".into(), "CAP@x".into()));
        assert_eq!(map.resolve("A", "old@x"), ("A".into(), "new@x".into()));
        assert_eq!(map.resolve("weird", "weird@x"), ("Other".into(), "o@x".into()));
        assert_eq!(map.resolve("Not Weird", "weird@x"), ("Not Weird".into(), "weird@x".into()));
        assert_eq!(map.resolve("B", "B-OLD@x"), ("Both".into(), "b@x".into()));
        assert_eq!(map.resolve("Z", "z@x"), ("Z".into(), "z@x".into()));
    }
}
