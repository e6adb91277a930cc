//! The analyzer against a labelled set of short chat messages written for this purpose
//! (`tests/fixtures/analyzer_labelled.tsv`: Ukrainian, Russian, English and other): accuracy of
//! language, polarity and emotion per language, with floors that fail the test if it drops.

use chatkeeper::analyzer::{Analyzer, Language};
use std::collections::BTreeMap;

struct Case {
    language: String,
    polarity: String,
    emotion: String,
    text: String,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/analyzer_labelled.tsv"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.splitn(4, '\t');
            let mut next = || {
                fields
                    .next()
                    .expect("four tab-separated fields")
                    .to_string()
            };
            Case {
                language: next(),
                polarity: next(),
                emotion: next(),
                text: next(),
            }
        })
        .collect()
}

/// (right, total) per language and measure.
type Scores = BTreeMap<(String, &'static str), (u32, u32)>;

fn score() -> Scores {
    let analyzer = Analyzer::default();
    let mut scores = Scores::new();
    for case in cases() {
        let a = analyzer.analyze(&case.text);
        let mut count = |measure: &'static str, right: bool| {
            let entry = scores.entry((case.language.clone(), measure)).or_default();
            entry.0 += u32::from(right);
            entry.1 += 1;
        };
        count("language", a.language.code() == case.language);
        if case.language != "other" {
            count("polarity", a.polarity() == case.polarity);
            count("emotion", a.emotion.name() == case.emotion);
        }
    }
    scores
}

#[test]
fn accuracy_per_language_stays_above_its_floor() {
    let scores = score();
    let mut report = String::new();
    for ((language, measure), (right, total)) in &scores {
        report += &format!(
            "{language:>5} {measure:<9} {right:>3}/{total:<3} {:5.1}%\n",
            100.0 * *right as f64 / *total as f64
        );
    }
    println!("{report}");
    // Floors: a little under what the current lexicons reach (see the README), so that a change
    // that makes the analyzer worse fails here.
    for ((language, measure), (right, total)) in &scores {
        let floor = match (language.as_str(), *measure) {
            (_, "language") => 0.85,
            (_, "polarity") => 0.62,
            (_, "emotion") => 0.55,
            _ => 0.0,
        };
        let accuracy = *right as f64 / *total as f64;
        assert!(
            accuracy >= floor,
            "{language} {measure} accuracy {accuracy:.3} fell below {floor}\n{report}"
        );
    }
    assert!(scores.values().map(|s| s.1).sum::<u32>() >= 300 * 2);
}

#[test]
fn examples_from_the_issue() {
    let analyzer = Analyzer::default();
    let a = analyzer.analyze("Я такий радий, що ти приїхав! 😊");
    assert_eq!(a.language, Language::Ukrainian);
    assert_eq!(a.emotion.name(), "joy");
    assert_eq!(a.polarity(), "positive");
    assert_eq!(
        analyzer
            .analyze("Это просто ужасно, я в бешенстве")
            .language,
        Language::Russian
    );
    let en = analyzer.analyze("not bad at all, the new laptop works great");
    assert_eq!(
        (en.language, en.polarity()),
        (Language::English, "positive")
    );
    assert_eq!(en.topic.map(|t| t.name()), Some("tech"));
    assert_eq!(analyzer.analyze("🙂🙂").emoji, 2);
    assert_eq!(analyzer.analyze("12345").language, Language::Other);
}

#[test]
fn style_and_humour_show_how_people_write() {
    use chatkeeper::analyzer::Style;
    let analyzer = Analyzer::default();
    let cases = [
        (
            "Доброго дня. Чи не могли б Ви, будь ласка, надіслати звіт до п'ятниці.",
            Some(Style::Formal),
        ),
        (
            "Уважаемые коллеги, прошу подтвердить участие.",
            Some(Style::Formal),
        ),
        (
            "Please kindly confirm the attached schedule.",
            Some(Style::Formal),
        ),
        ("Дякую, друзі! Ви найкращі ❤️", Some(Style::Friendly)),
        ("спасибо, дорогие, обнимаю", Some(Style::Friendly)),
        ("thanks buddy, you're awesome 😊", Some(Style::Friendly)),
        ("лол ну шо ти хз", Some(Style::Casual)),
        ("щас го, бро))", Some(Style::Casual)),
        ("idk tbh, gonna skip it", Some(Style::Casual)),
        ("завтра о шостій", None),
    ];
    for (text, style) in cases {
        assert_eq!(analyzer.analyze(text).style, style, "{text}");
    }
    for text in [
        "хахаха ну ти даєш",
        "ахахах",
        "lol that meme",
        "😂😂",
        "ржу не можу",
    ] {
        assert!(analyzer.analyze(text).humour, "{text}");
    }
    for text in ["хата на краю", "сумно сьогодні", "the meeting is at six"] {
        assert!(!analyzer.analyze(text).humour, "{text}");
    }
}
