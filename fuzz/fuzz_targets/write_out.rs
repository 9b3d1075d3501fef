//! The `-w` template scanning (`netaccess-cli/src/get/writeout.rs` `render_with`): any
//! template renders; every variable asked for is the text between a `%{` of the template and
//! the next `}`; with no variable known the output is never longer than the template and,
//! without a backslash, is the template; a template built from text, variables and escapes
//! renders to the parts' values.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::render_template;

#[derive(Arbitrary, Debug)]
enum Part {
    /// Plain text (`%` and `\` removed).
    Text(String),
    /// `%{name}` (`}` removed from the name).
    Variable(String),
    /// `\n`, `\t`, `\r` or `\\`.
    Escape(u8),
}

fuzz_target!(|input: (String, Vec<Part>)| {
    let (template, parts) = input;
    let mut asked = Vec::new();
    let out = render_template(&template, |name| {
        asked.push(name.to_owned());
        None
    });
    assert!(out.len() <= template.len());
    if !template.contains('\\') {
        assert_eq!(out, template);
    }
    for name in &asked {
        assert!(!name.contains('}'));
        assert!(template.contains(&format!("%{{{name}}}")));
    }

    let mut built = String::new();
    let mut want = String::new();
    for part in parts {
        match part {
            Part::Text(t) => {
                let t: String = t.chars().filter(|c| !matches!(c, '%' | '\\')).collect();
                built.push_str(&t);
                want.push_str(&t);
            }
            Part::Variable(name) => {
                let name: String = name.chars().filter(|&c| c != '}').collect();
                built.push_str(&format!("%{{{name}}}"));
                want.push_str(&format!("<{}:{name}>", name.len()));
            }
            Part::Escape(e) => {
                let (written, meant) =
                    [("\\n", '\n'), ("\\t", '\t'), ("\\r", '\r'), ("\\\\", '\\')]
                        [usize::from(e % 4)];
                built.push_str(written);
                want.push(meant);
            }
        }
    }
    let rendered = render_template(&built, |name| Some(format!("<{}:{name}>", name.len())));
    assert_eq!(rendered, want, "template {built:?}");
});
