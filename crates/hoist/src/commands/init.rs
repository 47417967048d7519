//! `hoist init`.

use std::path::Path;

use anstream::{eprintln, println};

use crate::cli::InitArgs;
use crate::{exit, printer};

pub fn run(args: &InitArgs, config: Option<&Path>) -> i32 {
    let dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            printer::error(&format!("cannot read the current directory: {e}"), &[]);
            return exit::INTERNAL;
        }
    };
    let target = config.map_or_else(|| dir.join("hoist.toml"), Path::to_path_buf);
    if target.exists() && !args.force {
        printer::error(
            &format!("{} already exists", target.display()),
            &["pass --force to overwrite it".into()],
        );
        return exit::CONFIG;
    }
    let plan = match hoist_config::init_plan(&dir, args.root.as_deref()) {
        Ok(plan) => plan,
        Err(e) => {
            let hints: Vec<String> = e.hint().into_iter().map(Into::into).collect();
            printer::error(&e.to_string(), &hints);
            return exit::CONFIG;
        }
    };
    for line in &plan.detected {
        eprintln!("detected  {line}");
    }
    if let Err(e) = std::fs::write(&target, &plan.text) {
        printer::error(&format!("cannot write {}: {e}", target.display()), &[]);
        return exit::INTERNAL;
    }
    println!("wrote {}", target.display());
    eprintln!("next: review it, then `hoist check` and `hoist deploy --plan`");
    exit::OK
}
