//! The rules of a password being chosen (SPEC section 10, "Passwords", after NIST SP
//! 800-63B 3.1.1.2): 12 to 256 characters, no control characters, no composition rules;
//! refused when common or guessable (a `zxcvbn` score below 3, with the username, the
//! display name and the site's name as context words). The one rule left, "not the current
//! password", needs the stored hash and is checked by `service::passwords`.
//!
//! Pure: no I/O, no clock of ours, no randomness (zxcvbn measures its own run time, which
//! nothing here reads). Only ever run when a password is chosen, never at sign-in.

/// Fewest characters of a password being chosen.
pub const MIN_CHARS: usize = 12;
/// Most characters of a password being chosen.
pub const MAX_CHARS: usize = 256;
/// The lowest zxcvbn score accepted (3: more than 10^8 guesses).
pub const MIN_SCORE: u8 = 3;
/// zxcvbn scores at most this many characters (see `scored`).
const SCORED_CHARS: usize = 100;
/// Context words shorter than this are ignored (initials say nothing).
const MIN_CONTEXT_WORD_CHARS: usize = 3;

/// Who the password is for, and where: the words a guesser would try first.
#[derive(Clone, Copy, Debug)]
pub struct PasswordContext<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub site_name: &'a str,
}

/// Why a password cannot be chosen. The messages name the reason and never contain the
/// password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password is empty")]
    Empty,
    #[error("the password is too short; use at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password is too long; use at most {MAX_CHARS} characters")]
    TooLong,
    #[error("the password contains a control character (such as a tab or a line break)")]
    ControlCharacter,
    /// A zxcvbn score below [`MIN_SCORE`]; `hint` is zxcvbn's warning (a fixed sentence
    /// such as "This is a very common password.", never the password).
    #[error(
        "the password is too common or too easy to guess{}; a few unrelated words make a strong one",
        hint_text(.hint)
    )]
    EasyToGuess { hint: Option<String> },
    #[error("the password is too much like the username; choose one that does not contain it")]
    LikeUsername,
    #[error("the password is too much like the display name; choose one that does not contain it")]
    LikeDisplayName,
    #[error("the password is too much like the site's name; choose one that does not contain it")]
    LikeSiteName,
    #[error("the new password must differ from the current one")]
    SameAsCurrent,
}

fn hint_text(hint: &Option<String>) -> String {
    match hint {
        Some(hint) => {
            let hint = hint.trim_end_matches('.');
            let mut chars = hint.chars();
            match chars.next() {
                Some(first) => format!(" ({}{})", first.to_lowercase(), chars.as_str()),
                None => String::new(),
            }
        }
        None => String::new(),
    }
}

/// Which context word a password leans on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Username,
    DisplayName,
    SiteName,
}

impl Source {
    fn problem(self) -> PasswordProblem {
        match self {
            Self::Username => PasswordProblem::LikeUsername,
            Self::DisplayName => PasswordProblem::LikeDisplayName,
            Self::SiteName => PasswordProblem::LikeSiteName,
        }
    }
}

/// The rule for a password being chosen: length (counted in Unicode scalar values), no
/// control characters, then zxcvbn's score with the context words. A weak password that
/// contains a context word is refused as "too much like" it, and so is a strong one that
/// is weak once the context words are taken out; any other weak one as easy to guess.
pub fn check_new_password(
    candidate: &str,
    context: &PasswordContext<'_>,
) -> Result<(), PasswordProblem> {
    if candidate.is_empty() {
        return Err(PasswordProblem::Empty);
    }
    // Bounded before counting, so that a huge input is refused at once.
    if candidate.len() > MAX_CHARS * 4 {
        return Err(PasswordProblem::TooLong);
    }
    let chars = candidate.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    if candidate.chars().any(char::is_control) {
        return Err(PasswordProblem::ControlCharacter);
    }
    let words = context_words(context);
    let inputs: Vec<&str> = words.iter().map(|(word, _)| word.as_str()).collect();
    let entropy = zxcvbn::zxcvbn(scored(candidate), &inputs);
    let contained = contained_source(candidate, &words);
    if u8::from(entropy.score()) < MIN_SCORE {
        return Err(match contained {
            Some(source) => source.problem(),
            None => PasswordProblem::EasyToGuess {
                hint: entropy
                    .feedback()
                    .and_then(|feedback| feedback.warning())
                    .map(|warning| warning.to_string()),
            },
        });
    }
    // Strong as a whole, but is it strong without the names? zxcvbn prices a context word
    // at a few guesses, yet "jsmith20242025" still scores 3 on the two years; what is left
    // once the username, display name and site name are taken out must stand on its own.
    if let Some(source) = contained {
        let rest = without_words(candidate, &words);
        if u8::from(zxcvbn::zxcvbn(scored(&rest), &[]).score()) < MIN_SCORE {
            return Err(source.problem());
        }
    }
    Ok(())
}

/// What zxcvbn scores: the first [`SCORED_CHARS`] characters. Its run time grows fast
/// with the length of patterned input, and a password strong in its first 100 characters
/// is strong; the rest cannot make a weak start strong enough to matter.
fn scored(candidate: &str) -> &str {
    match candidate.char_indices().nth(SCORED_CHARS) {
        Some((end, _)) => &candidate[..end],
        None => candidate,
    }
}

/// The first context word (in the order username, display name, site name) that the
/// password contains, case aside.
fn contained_source(candidate: &str, words: &[(String, Source)]) -> Option<Source> {
    let lower = candidate.to_lowercase();
    words
        .iter()
        .find(|(word, _)| lower.contains(word.as_str()))
        .map(|(_, source)| *source)
}

/// The password, lower-cased, with every context word taken out (the longest first, so
/// that "jane smithson" goes before "jane"), letters and digits only.
fn without_words(candidate: &str, words: &[(String, Source)]) -> String {
    let mut rest = candidate.to_lowercase();
    let mut words: Vec<&str> = words.iter().map(|(word, _)| word.as_str()).collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
    for word in words {
        rest = rest.replace(word, "");
    }
    // Separators between a name and digits ("jsmith-2024-2025") add next to nothing.
    rest.retain(char::is_alphanumeric);
    rest
}

/// The context words, lower-cased as zxcvbn compares them: the username, the display name
/// and each of its words, the site's name and each of its words.
fn context_words(context: &PasswordContext<'_>) -> Vec<(String, Source)> {
    let mut words: Vec<(String, Source)> = Vec::new();
    let mut add = |text: &str, source: Source| {
        let text = text.trim().to_lowercase();
        if text.chars().count() >= MIN_CONTEXT_WORD_CHARS && !words.iter().any(|(w, _)| *w == text)
        {
            words.push((text, source));
        }
    };
    add(context.username, Source::Username);
    for (text, source) in [
        (context.display_name, Source::DisplayName),
        (context.site_name, Source::SiteName),
    ] {
        add(text, source);
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            add(word, source);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPEC section 10, "Passwords".

    /// zxcvbn sees at most 100 characters: a long patterned input is scored quickly, and
    /// its weak start decides.
    #[test]
    fn only_the_first_hundred_characters_are_scored() {
        assert_eq!(scored(&"a".repeat(256)).chars().count(), SCORED_CHARS);
        assert_eq!(scored("short"), "short");
        assert_eq!(scored(&"é".repeat(150)), "é".repeat(100));
        let long_weak = format!("{}{}", "a".repeat(100), "orchard lantern quietly measures");
        assert!(check(&long_weak).is_err());
        let long_strong = format!(
            "orchard lantern quietly measures twelve {}",
            "a".repeat(200)
        );
        assert_eq!(check(&long_strong), Ok(()));
    }

    const CONTEXT: PasswordContext<'static> = PasswordContext {
        username: "jsmith",
        display_name: "Jane Smithson",
        site_name: "Riverside Clinic",
    };

    fn check(candidate: &str) -> Result<(), PasswordProblem> {
        check_new_password(candidate, &CONTEXT)
    }

    fn refused(candidate: &str) -> PasswordProblem {
        let problem = check(candidate).expect_err(candidate);
        let message = problem.to_string();
        assert!(
            candidate.is_empty() || !message.to_lowercase().contains(&candidate.to_lowercase()),
            "{message:?} shows the password"
        );
        problem
    }

    #[test]
    fn a_long_passphrase_is_accepted() {
        assert_eq!(check("orchard lantern quietly measures twelve"), Ok(()));
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_as_easy_to_guess() {
        for candidate in [
            "passwordpassword",
            "Password1234",
            "qwertyuiop123",
            "aaaaaaaaaaaaaa",
        ] {
            assert!(
                matches!(refused(candidate), PasswordProblem::EasyToGuess { .. }),
                "{candidate}"
            );
        }
        let message = refused("passwordpassword").to_string();
        assert!(
            message.contains("too common or too easy to guess"),
            "{message}"
        );
    }

    #[test]
    fn the_username_with_digits_is_refused_as_like_the_username() {
        assert_eq!(refused("jsmith20242025"), PasswordProblem::LikeUsername);
        assert_eq!(refused("JSmith-2024-2025"), PasswordProblem::LikeUsername);
        assert!(PasswordProblem::LikeUsername
            .to_string()
            .contains("too much like the username"));
    }

    #[test]
    fn the_display_name_is_refused_as_like_the_display_name() {
        assert_eq!(
            refused("JaneSmithson2024"),
            PasswordProblem::LikeDisplayName
        );
        assert_eq!(
            refused("smithson12345678"),
            PasswordProblem::LikeDisplayName
        );
    }

    #[test]
    fn the_site_name_is_refused_as_like_the_site_name() {
        assert_eq!(refused("RiversideClinic1"), PasswordProblem::LikeSiteName);
        assert_eq!(refused("riverside2024!!"), PasswordProblem::LikeSiteName);
    }

    #[test]
    fn a_strong_password_may_contain_a_context_word() {
        // The score decides (SPEC: "refused when common or guessable"), not containment.
        assert_eq!(check("jsmith orchard lantern quietly measures"), Ok(()));
    }

    #[test]
    fn length_is_12_to_256_characters() {
        assert_eq!(refused("orchardlant"), PasswordProblem::TooShort);
        assert_eq!(refused(""), PasswordProblem::Empty);
        // Letters without a pattern (a small linear congruential sequence).
        let mut state: u32 = 7;
        let long: String = (0..257)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'a' + u8::try_from((state >> 16) % 26).unwrap())
            })
            .collect();
        assert_eq!(refused(&long), PasswordProblem::TooLong);
        assert_eq!(check(&long[..256]), Ok(()));
        assert_eq!(refused(&long[..11]), PasswordProblem::TooShort);
        // Characters, not bytes: 12 two-byte letters are long enough.
        assert_ne!(check("éàüöñçøåßæœð"), Err(PasswordProblem::TooShort));
        assert!(PasswordProblem::TooShort
            .to_string()
            .contains("12 characters"));
        assert!(PasswordProblem::TooLong
            .to_string()
            .contains("256 characters"));
        // A huge input is refused without being counted.
        assert_eq!(refused(&"x".repeat(1_000_000)), PasswordProblem::TooLong);
    }

    #[test]
    fn control_characters_are_refused() {
        for candidate in [
            "orchard lantern\tquietly",
            "orchard lantern\nquietly",
            "orchard\u{0}lantern quietly",
            "orchard\u{7f}lantern quietly",
        ] {
            assert_eq!(refused(candidate), PasswordProblem::ControlCharacter);
        }
    }

    #[test]
    fn the_messages_never_contain_the_password() {
        for candidate in [
            "passwordpassword",
            "Password1234",
            "jsmith20242025",
            "JaneSmithson2024",
            "RiversideClinic1",
            "abcabcabcabcabc",
            "1234567890123",
        ] {
            refused(candidate);
        }
        assert_eq!(
            PasswordProblem::SameAsCurrent.to_string(),
            "the new password must differ from the current one"
        );
    }

    #[test]
    fn no_composition_rules() {
        // Lower-case letters and spaces only, no digit, no symbol: accepted.
        assert_eq!(check("purple giraffes nap under warm bridges"), Ok(()));
    }
}
