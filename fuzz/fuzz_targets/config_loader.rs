//! Arbitrary bytes as a project's configuration: `patchbay.yaml` and, after
//! the first NUL byte (which YAML text cannot contain), one flow file.
//! Loading must never panic; a report full of errors is a fine outcome.

#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use patchbay_config::{MapEnv, Project, Source};

fuzz_target!(|data: &[u8]| {
    let (root, flow) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let root = Source {
        path: "patchbay.yaml".into(),
        text: String::from_utf8_lossy(root).into_owned(),
    };
    let flows = flow
        .map(|text| Source {
            path: "flows/fuzzed.yaml".into(),
            text: String::from_utf8_lossy(text).into_owned(),
        })
        .into_iter()
        .collect();
    // Some placeholders resolve and others do not, so both paths of
    // `${env:NAME}` interpolation run.
    let env = MapEnv::new(
        [
            ("DEMO_CRM_URL", "http://127.0.0.1:9/crm"),
            ("DEMO_CRM_KEY", "k3y"),
            ("DEMO_PAYMENTS_URL", "http://127.0.0.1:9/payments"),
            ("DEMO_PAYMENTS_KEY", "k3y"),
            ("EMPTY", ""),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let (project, report) = Project::from_sources_partial(Path::new("project"), root, flows, &env);
    // Rendering the diagnostics is part of loading: it must not panic either.
    let _ = report.sorted().to_string();
    let _ = project.store_path();
});
