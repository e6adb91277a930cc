//! The modules of `src/` import downwards only: no module imports, through any chain of `use`
//! declarations and `crate::` / `super::` paths, a module that imports it back. A module whose
//! `mod.rs` declares and re-exports its children is a facade: a child that needs a sibling's item
//! names the sibling, not the facade, so re-exports are followed to where an item is defined.
//!
//! This reads the sources with a small parser of `use` trees (no `syn`): enough for this
//! crate's style, and it fails loudly rather than passing when it finds nothing to check.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// One source file: its module path and its text without comments and test modules.
struct Source {
    module: Module,
    text: String,
}

fn sources(root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative: PathBuf = path.strip_prefix(root).unwrap().with_extension("");
                let mut module: Module = relative
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                // The binary's `main.rs` is another crate: only the library counts.
                if relative == Path::new("main") {
                    continue;
                }
                out.push(Source {
                    module,
                    text: strip(&std::fs::read_to_string(&path).unwrap()),
                });
            }
        }
    }
    out
}

/// The text without line comments and without the unit-test module at the end.
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths of a `use` tree (`a::{b, c::{d, e as f}}`), with the name each binds.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    // A `use` inside a string literal may be anything: only real trees are expanded.
    if let (Some(open), Some(close)) = (tree.find('{'), tree.rfind('}')) {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect();
        let inner = tree.get(open + 1..close).unwrap_or_default();
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        let prefix: Vec<String> = prefix.iter().cloned().chain(head).collect();
        for item in items.iter().filter(|i| !i.trim().is_empty()) {
            expand(item, &prefix, out);
        }
    } else {
        let (path, alias) = match tree.split_once(" as ") {
            Some((path, alias)) => (path, Some(alias.trim().to_string())),
            None => (tree, None),
        };
        let path = prefix
            .iter()
            .cloned()
            .chain(path.split("::").map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect();
        out.push((path, alias));
    }
}

struct Graph {
    modules: BTreeSet<Module>,
    /// Names each module defines.
    defines: HashMap<Module, BTreeSet<String>>,
    /// Names each module imports, and the absolute path they stand for.
    binds: HashMap<Module, HashMap<String, Vec<String>>>,
    /// Modules each module glob-imports (`use x::*`).
    globs: HashMap<Module, Vec<Vec<String>>>,
    /// Every absolute path each module mentions.
    mentions: HashMap<Module, Vec<Vec<String>>>,
}

impl Graph {
    fn new(sources: &[Source]) -> Graph {
        let modules: BTreeSet<Module> = sources.iter().map(|s| s.module.clone()).collect();
        let mut graph = Graph {
            modules,
            defines: HashMap::new(),
            binds: HashMap::new(),
            globs: HashMap::new(),
            mentions: HashMap::new(),
        };
        for source in sources {
            let module = &source.module;
            let defines = graph.defines.entry(module.clone()).or_default();
            for word in [
                "struct ", "enum ", "fn ", "type ", "const ", "trait ", "static ", "mod ",
            ] {
                for (at, _) in source.text.match_indices(word) {
                    let before = source.text[..at].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let name: String = source.text[at + word.len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    defines.insert(name);
                }
            }
            let mut rest = source.text.as_str();
            while let Some(at) = find_word(rest, "use ") {
                let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
                let mut paths = Vec::new();
                expand(&rest[at + 4..end].replace('\n', " "), &[], &mut paths);
                for (path, alias) in paths {
                    let Some(absolute) = graph.absolute(module, &path) else {
                        continue;
                    };
                    if path.last().is_some_and(|s| s == "*") {
                        let target = absolute[..absolute.len() - 1].to_vec();
                        graph
                            .globs
                            .entry(module.clone())
                            .or_default()
                            .push(target.clone());
                        graph
                            .mentions
                            .entry(module.clone())
                            .or_default()
                            .push(target);
                        continue;
                    }
                    let (absolute, name) = match absolute.last().map(String::as_str) {
                        Some("self") => {
                            let parent = absolute[..absolute.len() - 1].to_vec();
                            let name = parent.last().cloned().unwrap_or_default();
                            (parent, name)
                        }
                        _ => (
                            absolute.clone(),
                            absolute.last().cloned().unwrap_or_default(),
                        ),
                    };
                    graph
                        .binds
                        .entry(module.clone())
                        .or_default()
                        .insert(alias.unwrap_or(name), absolute.clone());
                    graph
                        .mentions
                        .entry(module.clone())
                        .or_default()
                        .push(absolute);
                }
                rest = &rest[end.min(rest.len())..];
            }
            // Paths written in the code: `crate::a::b`, `super::c`.
            for start in ["crate::", "super::"] {
                for (at, _) in source.text.match_indices(start) {
                    let before = source.text[..at].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let path: Vec<String> = source.text[at..]
                        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .next()
                        .unwrap_or_default()
                        .split("::")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    // `super::{…}` is a `use` tree, read above; `super::name` is a path.
                    let named = path.iter().any(|s| s != "crate" && s != "super");
                    if !named {
                        continue;
                    }
                    if let Some(absolute) = graph.absolute(module, &path) {
                        graph
                            .mentions
                            .entry(module.clone())
                            .or_default()
                            .push(absolute);
                    }
                }
            }
        }
        graph
    }

    /// `path` as written in `module`, from the crate root; `None` for other crates.
    fn absolute(&self, module: &Module, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        match first.as_str() {
            "crate" => Some(path[1..].to_vec()),
            "super" => {
                let mut base = module.clone();
                let mut path = path;
                while path.first().is_some_and(|s| s == "super") {
                    base.pop();
                    path = &path[1..];
                }
                Some(base.into_iter().chain(path.iter().cloned()).collect())
            }
            "self" => Some(module.iter().chain(&path[1..]).cloned().collect()),
            _ => {
                let child: Module = module.iter().chain([first]).cloned().collect();
                self.modules
                    .contains(&child)
                    .then(|| module.iter().chain(path).cloned().collect())
            }
        }
    }

    /// The longest prefix of `path` that is a module.
    fn module_of(&self, path: &[String]) -> Module {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| self.modules.contains(m))
            .unwrap_or_default()
    }

    /// The module that defines what `path` names, following re-exports.
    fn target(&self, path: &[String]) -> Module {
        let mut path = path.to_vec();
        let mut module = self.module_of(&path);
        for _ in 0..16 {
            let Some(name) = path.get(module.len()).cloned() else {
                break;
            };
            let defined = self.defines.get(&module).is_some_and(|d| d.contains(&name));
            if defined {
                break;
            }
            if let Some(bound) = self.binds.get(&module).and_then(|b| b.get(&name)) {
                if bound.as_slice() != &path[..=module.len()] {
                    path = bound
                        .iter()
                        .chain(&path[module.len() + 1..])
                        .cloned()
                        .collect();
                    module = self.module_of(&path);
                    continue;
                }
            }
            let glob = self.globs.get(&module).and_then(|globs| {
                globs.iter().find(|g| {
                    let m = self.module_of(g);
                    self.defines.get(&m).is_some_and(|d| d.contains(&name))
                })
            });
            match glob {
                Some(g) => {
                    path = g.iter().chain(&path[module.len()..]).cloned().collect();
                    module = self.module_of(&path);
                }
                None => break,
            }
        }
        module
    }

    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (module, mentions) in &self.mentions {
            for path in mentions {
                let target = self.target(path);
                if &target != module {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
        edges
    }
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        !text[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The cycles of `edges` (Tarjan's strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: HashMap<Module, usize>,
        low: HashMap<Module, usize>,
        stack: Vec<Module>,
        found: Vec<Vec<Module>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Module) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.clone(), low);
                } else if self.stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                loop {
                    let w = self.stack.pop().expect("on the stack");
                    let done = &w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

fn name(module: &Module) -> String {
    match module.is_empty() {
        true => "crate".into(),
        false => module.join("::"),
    }
}

#[test]
fn no_module_of_the_library_imports_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources(&root);
    let graph = Graph::new(&sources);
    let edges = graph.edges();
    // The parser must see the crate's real structure, or the check would pass on nothing.
    let bot_handlers = vec!["bot".to_string(), "handlers".to_string()];
    let bot_commands = vec!["bot".to_string(), "commands".to_string()];
    assert!(sources.len() > 50, "only {} sources found", sources.len());
    assert!(
        edges
            .get(&bot_handlers)
            .is_some_and(|e| e.contains(&bot_commands)),
        "the parser no longer sees bot::handlers use bot::commands"
    );
    let found = cycles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let arrows: Vec<String> = component
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|b| component.contains(b))
                        .map(move |b| format!("{} -> {}", name(a), name(b)))
                })
                .collect();
            arrows.join(", ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "modules import in a circle: {described:#?}\nMove what both need below both (or into \
         a file of its own), so that imports go one way."
    );
}

#[test]
fn a_circle_is_found() {
    let module = |m: &str| m.split("::").map(str::to_string).collect::<Module>();
    let sources = [
        Source {
            module: module("a"),
            text: "use crate::b::Thing;\npub struct Other;".into(),
        },
        Source {
            module: module("b"),
            text: "use super::a::{self, Other};\npub struct Thing;".into(),
        },
        Source {
            module: module("c"),
            text: "pub use crate::a::Other as Renamed;".into(),
        },
    ];
    let edges = Graph::new(&sources).edges();
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{edges:?}");
    assert_eq!(edges[&module("c")], BTreeSet::from([module("a")]));
}
