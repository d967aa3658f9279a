//! The deployment plan: the resolved manifest → a DAG of steps with content-addressed versions.
//!
//! Steps are a code bundle per fast-copy environment, an image build per distinct image (a full-build
//! environment gets its own, with its code baked in), and a deployment per environment. Edges run from
//! what a step needs to the step: image and bundle → deployment, dependency → dependent. Levels group
//! the steps that may run in parallel. The plan is data: the same object is printed, saved and, later,
//! executed. The diff against a live cluster will fill each step's action.

pub mod canon;
pub mod hash;
pub mod render;

use std::collections::{BTreeMap, hash_map};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compact_str::CompactString;

use foldhash::{HashMap, HashMapExt};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::bundle::cache::StatCache;
use crate::bundle::walk::{self, Globs, Scan};
use crate::bundle::{FileEntry, FileSet};
use crate::manifest::model::{CopyStyle, EnvKind, Environment, Image, ImageSource, Manifest};
use hash::{Digest, HashInput, Version, VersionHasher};

/// The JSON plan's format version; bumped on any incompatible change.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub project: String,
    pub domain: String,
    /// In dependency order: every step comes after the steps it needs.
    pub steps: Vec<Step>,
    /// Groups of step ids that may run at the same time, in order.
    pub levels: Vec<Vec<Arc<str>>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// "bundle:<env>", "image:<image>", "image:<image>+<env>" (full build) or "deploy:<env>". Shared
    /// by every place that names the step: other steps' needs, hash inputs, levels.
    pub id: Arc<str>,
    pub level: usize,
    /// The content version: the first 20 hex digits of `digest`.
    pub version: Version,
    pub digest: Digest,
    /// The ids of the steps this one needs.
    pub needs: Vec<Arc<str>>,
    #[serde(flatten)]
    pub detail: StepDetail,
    /// What went into the digest, in order.
    pub inputs: Vec<HashInput>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StepDetail {
    Bundle {
        environment: Arc<str>,
        files: usize,
        bytes: u64,
    },
    Image {
        image: String,
        repository: String,
        registry: Option<String>,
        from: String,
        baked_code_of: Option<String>,
    },
    Deploy {
        environment: Arc<str>,
        environment_kind: EnvKind,
        pinned_version: Option<String>,
        image_step: Arc<str>,
        bundle_step: Option<Arc<str>>,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error(transparent)]
    #[diagnostic(code(flyte::plan::files), help("check that the files exist and are readable"))]
    Files(#[from] crate::bundle::walk::WalkError),
    #[error("cannot read the Dockerfile context {context}: {message}")]
    #[diagnostic(code(flyte::plan::context), help("check the context folder and its .dockerignore"))]
    Context { context: String, message: String },
    #[error("internal: the dependency graph has a cycle through {0}, which validation should have refused")]
    #[diagnostic(code(flyte::plan::cycle))]
    Cycle(String),
}

/// Scans each folder once per plan, however many steps read it, with the same selection rules and
/// stat cache as `flyte bundle`, so a plan's bundle versions are the bundles' digests.
#[derive(Default)]
struct Files {
    scanned: BTreeMap<PathBuf, Scan>,
}

impl Files {
    fn scan(&mut self, dir: &Path) -> Result<&Scan, PlanError> {
        if !self.scanned.contains_key(dir) {
            let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            let mut cache = StatCache::load(&crate::bundle::cache_dir(), &absolute);
            let scan = walk::scan(dir, &mut cache)?;
            // A cache that cannot be saved costs the next run time, not this run its result.
            let _ = cache.save();
            self.scanned.insert(dir.to_path_buf(), scan);
        }
        Ok(&self.scanned[dir])
    }

    fn of(&mut self, dir: &Path) -> Result<FileSet, PlanError> {
        Ok(FileSet { files: self.scan(dir)?.files.clone() })
    }

    /// A single file named in the manifest (a Dockerfile, a lock file), read whatever ignore files say.
    fn file(&mut self, root: &Path, relative: &str) -> Result<FileSet, PlanError> {
        let entry = FileEntry::read(root, relative)
            .map_err(|source| walk::WalkError::Io { path: root.join(relative), source })?;
        Ok(FileSet { files: vec![entry] })
    }
}

fn add_files(hasher: &mut VersionHasher, label: &str, set: &FileSet) {
    Digested::new(set).add_to(hasher, label);
}

/// What a set of files adds to a version, computed once however many steps add it.
struct Digested {
    files: usize,
    bytes: u64,
    digest: Digest,
    /// What `--explain` shows for it.
    detail: String,
    /// The version of a bundle of these files, and its inputs: the files' digest alone, so every
    /// environment with the same selection shares it, hashed once.
    bundle: (Digest, Vec<HashInput>),
}

impl Digested {
    fn new(set: &FileSet) -> Self {
        let (files, bytes) = (set.files.len(), set.total_size());
        let detail = format!("{files} files, {bytes} bytes");
        let mut digested =
            Digested { files, bytes, digest: Digest::of(&set.digest()), detail, bundle: Default::default() };
        let mut bundle = VersionHasher::new();
        digested.add_to(&mut bundle, "files");
        digested.bundle = bundle.finish();
        digested
    }

    fn add_to(&self, hasher: &mut VersionHasher, label: &str) {
        hasher.raw(label, self.digest, self.detail.clone());
    }
}

/// Whether a plan shows each deployment's spec as JSON beside its digest, for `--explain` and the JSON
/// plan. The versions are the same either way; writing the JSON of every environment is a third of
/// planning a large manifest, so a plan that only shows versions goes without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explain {
    Yes,
    No,
}

/// Builds the plan for a resolved manifest. Reads the files that versions depend on; nothing else.
pub fn build(manifest: &Manifest, explain: Explain) -> Result<Plan, PlanError> {
    let mut files = Files::default();

    // What each environment needs before its deployment: its step names and dependencies, its code
    // selection, its image and its bundle. Each pass over 10,000 environments waits on memory, so the
    // ones that only read an environment run in parts on every core, and the one shared walk (code
    // selections and images, made once each) reads little.
    let envs: Vec<&Environment> = manifest.environments.values().map(Box::as_ref).collect();
    const PER_THREAD: usize = 1000;
    let threads = crate::parts::threads_for(envs.len(), PER_THREAD);
    let positions: HashMap<&str, usize> = envs.iter().enumerate().map(|(at, env)| (env.name.as_str(), at)).collect();
    // What is each environment's own: the names of its steps and its dependencies by position (each
    // once, in the order first named). Made in parts on every core; the rest of the walk is shared.
    let named = crate::parts::map_parts(&envs, threads, |part| {
        part.iter().map(|env| named(env, &positions)).collect::<Vec<_>>()
    });
    let mut names: Vec<Arc<str>> = Vec::with_capacity(envs.len());
    let mut deploy_ids: Vec<Arc<str>> = Vec::with_capacity(envs.len());
    let mut bundle_ids: Vec<Option<Arc<str>>> = Vec::with_capacity(envs.len());
    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(envs.len());
    for named in named.into_iter().flatten() {
        names.push(named.name);
        deploy_ids.push(named.deploy);
        bundle_ids.push(named.bundle);
        dependencies.push(named.after);
    }
    // The shared walk (code selections and images) and the dependency order need nothing of each
    // other: on a large manifest the order is found on another thread meanwhile.
    let (walked, order) = if threads > 1 {
        std::thread::scope(|scope| {
            let ordering = scope.spawn(|| dependency_order(&envs, &mut dependencies));
            let walked = walk_images(manifest, &envs, &mut files);
            (walked, ordering.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })
    } else {
        (walk_images(manifest, &envs, &mut files), dependency_order(&envs, &mut dependencies))
    };
    let Walked { selected, code_at, images, image_at } = walked?;
    let order = order?;
    // The fast-copy environments' bundles, in environment order, made in parts; where each is.
    let mut bundle_at: Vec<Option<usize>> = Vec::with_capacity(envs.len());
    let mut bundles_made = 0;
    for id in &bundle_ids {
        bundle_at.push(id.as_ref().map(|_| bundles_made));
        bundles_made += usize::from(id.is_some());
    }
    let bundles: Vec<Step> = crate::parts::map_parts_at(&bundle_ids, threads, |first, part| {
        (first..)
            .zip(part.iter())
            .filter_map(|(index, id)| {
                let id = id.clone()?;
                let code = &selected[code_at[index]];
                let (digest, inputs) = code.bundle.clone();
                let detail =
                    StepDetail::Bundle { environment: names[index].clone(), files: code.files, bytes: code.bytes };
                Some(Step { id, level: 0, version: digest.version(), digest, needs: Vec::new(), detail, inputs })
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    // The image and bundle steps an environment's deployment needs, in that order.
    let made = |index: usize| std::iter::once(&images[image_at[index]]).chain(bundle_at[index].map(|at| &bundles[at]));

    // Deployments. Their versions first, in dependency order, as each takes its dependencies' versions;
    // that is a hash of a few digests per environment. Then the steps themselves, which are independent
    // of each other, in parts.
    let (project, label): (&str, Arc<str>) = (&manifest.project.name, Arc::from("spec"));
    let mut specs: Vec<HashInput> = match explain {
        Explain::Yes => spec_inputs(project, &envs, &label),
        Explain::No => envs.iter().map(|env| deploy_spec(project, env, Explain::No, &label)).collect(),
    };
    // A deployment's version hashes its spec, its image and bundle, then its dependencies' versions.
    // The first three are its own: hashed side by side, the state kept, so the walk in dependency
    // order only adds the dependencies (the same bytes in the same order as one pass).
    let mut started: Vec<Option<(hash::Framer, usize)>> = (0..envs.len()).map(|_| None).collect();
    crate::parts::map_parts_mut(&mut started, threads, |first, part| {
        for (index, slot) in (first..).zip(part.iter_mut()) {
            let mut version = hash::Framer::new();
            version.input(&[&specs[index].label], &specs[index].digest);
            let mut level = 0;
            for step in made(index) {
                version.input(&[&step.id], &step.digest);
                level = level.max(step.level + 1);
            }
            *slot = Some((version, level));
        }
    });
    let mut deploy_digests: Vec<Digest> = vec![Digest::default(); envs.len()];
    let mut deploy_levels: Vec<usize> = vec![0; envs.len()];
    for index in order {
        let Some((mut version, mut level)) = started[index].take() else { continue };
        for &dependency in &dependencies[index] {
            version.input(&[&deploy_ids[dependency]], &deploy_digests[dependency]);
            level = level.max(deploy_levels[dependency] + 1);
        }
        deploy_digests[index] = version.finish();
        deploy_levels[index] = level;
    }
    drop(started);
    // The deployments are made in plan order (by level, then id), so the plan is laid out without
    // moving 10,000 steps into place again; their specs are moved into that order first.
    let mut in_order: Vec<OrderKey> = (0..envs.len())
        .map(|index| (deploy_levels[index], id_prefix(&deploy_ids[index]), &*deploy_ids[index], index))
        .collect();
    in_order.sort_unstable_by(by_level_and_id);
    let in_order: Vec<usize> = in_order.into_iter().map(|(_, _, _, index)| index).collect();
    let mut specs: Vec<HashInput> = in_order.iter().map(|&index| std::mem::take(&mut specs[index])).collect();
    let deploys = crate::parts::map_parts_mut(&mut specs, threads, |first, part| {
        in_order[first..first + part.len()]
            .iter()
            .zip(part.iter_mut())
            .map(|(&index, spec)| {
                let env = envs[index];
                // What the deployment needs, with the digest its version took of each, in that order.
                let made = made(index).map(|step| (&step.id, step.digest));
                let after = dependencies[index].iter().map(|&at| (&deploy_ids[at], deploy_digests[at]));
                let needs: Vec<(&Arc<str>, Digest)> = made.chain(after).collect();
                let inputs = std::iter::once(std::mem::take(spec)).chain(needs.iter().map(|&(id, digest)| HashInput {
                    label: id.clone(),
                    digest,
                    detail: String::new(),
                }));
                let inputs: Vec<HashInput> = inputs.collect();
                let detail = StepDetail::Deploy {
                    environment: names[index].clone(),
                    environment_kind: env.kind,
                    pinned_version: env.version.as_ref().map(|v| v.to_string()),
                    image_step: images[image_at[index]].id.clone(),
                    bundle_step: bundle_at[index].map(|at| bundles[at].id.clone()),
                };
                let digest = deploy_digests[index];
                Step {
                    id: deploy_ids[index].clone(),
                    level: deploy_levels[index],
                    version: digest.version(),
                    digest,
                    needs: needs.into_iter().map(|(id, _)| id.clone()).collect(),
                    detail,
                    inputs,
                }
            })
            .collect::<Vec<_>>()
    });
    let p = lay_out(manifest, bundles, images, deploys);
    Ok(p)
}

/// What the shared walk over the environments finds: each distinct code selection, made once, and the
/// image steps.
struct Walked {
    selected: Vec<Digested>,
    /// Where each environment's code selection is in `selected`.
    code_at: Vec<usize>,
    images: Vec<Step>,
    /// Where each environment's image step is in `images`.
    image_at: Vec<usize>,
}

fn walk_images(manifest: &Manifest, envs: &[&Environment], files: &mut Files) -> Result<Walked, PlanError> {
    // Each distinct code selection once (one scan of root_dir), and the images: the plain image once,
    // however many fast-copy environments use it; one per full build.
    let root = &manifest.project.root;
    let mut selections: HashMap<(&[CompactString], &[CompactString]), usize> = HashMap::new();
    let mut selected: Vec<Digested> = Vec::new();
    let mut code_at: Vec<usize> = Vec::with_capacity(envs.len());
    // An image's own inputs are the same for each full build on it: hashed once, copied for each.
    let mut image_inputs: HashMap<&str, VersionHasher> = HashMap::new();
    // By image and the environment baked in (a full build), or none.
    let mut image_steps: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    let mut images: Vec<Step> = Vec::new();
    // Where each environment's image step is in `images`.
    let mut image_at: Vec<usize> = Vec::with_capacity(envs.len());
    for env in envs {
        let code = match selections.entry(globs(env)) {
            hash_map::Entry::Occupied(known) => *known.get(),
            hash_map::Entry::Vacant(slot) => {
                let (include, exclude) = globs(env);
                selected.push(Digested::new(&files.scan(root)?.select(&Globs::new(include, exclude)).files));
                *slot.insert(selected.len() - 1)
            }
        };
        code_at.push(code);
        let baked = (env.code.copy_style == CopyStyle::Full).then_some(env.name.as_str());
        if let Some(&at) = image_steps.get(&(env.image.as_str(), baked)) {
            image_at.push(at);
            continue;
        }
        let image = &manifest.images[&env.image];
        let mut hasher = match image_inputs.entry(env.image.as_str()) {
            hash_map::Entry::Occupied(known) => known.get().clone(),
            hash_map::Entry::Vacant(slot) => slot.insert(image_hasher(image, root, files)?).clone(),
        };
        if baked.is_some() {
            hasher.spec("code", &(&env.code.dst, &env.code.python_path));
            selected[code].add_to(&mut hasher, "code files");
        }
        let registry = image.registry.as_ref().or(manifest.project.registry.as_ref()).map(|r| r.to_string());
        let detail = StepDetail::Image {
            image: image.name.to_string(),
            repository: image.repository.to_string(),
            registry,
            from: describe_source(image),
            baked_code_of: baked.map(str::to_string),
        };
        let id = match baked {
            Some(env) => format!("image:{}+{env}", image.name),
            None => format!("image:{}", image.name),
        };
        image_steps.insert((env.image.as_str(), baked), images.len());
        image_at.push(images.len());
        images.push(step(Arc::from(id), hasher, Vec::new(), detail));
    }
    Ok(Walked { selected, code_at, images, image_at })
}

/// The environments in the order their versions are taken: each after its dependencies, the earliest
/// declared first. Each environment's dependencies are sorted by position on the way.
fn dependency_order(envs: &[&Environment], dependencies: &mut [Vec<usize>]) -> Result<Vec<usize>, PlanError> {
    let mut graph: DiGraph<&str, ()> = DiGraph::with_capacity(envs.len(), envs.len());
    // Node i is the i-th environment.
    for env in envs {
        graph.add_node(env.name.as_str());
    }
    for (index, after) in dependencies.iter_mut().enumerate() {
        for &from in after.iter() {
            graph.add_edge(NodeIndex::new(from), NodeIndex::new(index), ());
        }
        // In name order from here on.
        after.sort_unstable();
    }
    toposort(&graph, None).map_err(|cycle| PlanError::Cycle(graph[cycle.node_id()].to_string()))?;
    Ok(earliest_first(dependencies))
}

/// An environment's own part of the plan: the names of its steps, and the environments it follows.
struct Named {
    name: Arc<str>,
    deploy: Arc<str>,
    /// Fast-copy environments only.
    bundle: Option<Arc<str>>,
    /// Positions in the plan's environments, each once, in the order first named.
    after: Vec<usize>,
}

fn named(env: &Environment, positions: &HashMap<&str, usize>) -> Named {
    let mut after: Vec<usize> = Vec::new();
    for from in env.dependencies().filter_map(|name| positions.get(name).copied()) {
        if !after.contains(&from) {
            after.push(from);
        }
    }
    Named {
        name: Arc::from(env.name.as_str()),
        deploy: Arc::from(format!("deploy:{}", env.name)),
        bundle: (env.code.copy_style == CopyStyle::Fast).then(|| Arc::from(format!("bundle:{}", env.name))),
        after,
    }
}

/// A dependency order of the environments (each after its dependencies; the graph has no cycle) that
/// keeps to their order where it can: environments usually depend on ones sorted before them, and then
/// it is that order, so the versions are computed walking memory forwards rather than all over it.
fn earliest_first(dependencies: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting_on: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); dependencies.len()];
    for (index, needs) in dependencies.iter().enumerate() {
        for &dependency in needs {
            dependents[dependency].push(index);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        (0..dependencies.len()).filter(|&index| waiting_on[index] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(std::cmp::Reverse(index)) = ready.pop() {
        order.push(index);
        for &dependent in &dependents[index] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(std::cmp::Reverse(dependent));
            }
        }
    }
    order
}

/// What a deployment's version says of its environment: the project, the name and the resolved spec,
/// whose digest validation took ([`Environment::spec_digest`]); explained, the same value as JSON.
/// Every deployment's input shares one `label`.
fn deploy_spec(project: &str, env: &Environment, explain: Explain, label: &Arc<str>) -> HashInput {
    let detail = match explain {
        Explain::Yes => hash::json(&(project, &env.name, env)),
        Explain::No => String::new(),
    };
    HashInput { label: label.clone(), digest: spec_digest(project, env), detail }
}

/// The digest of an environment's spec: the one validation took, when it was resolved for planning.
fn spec_digest(project: &str, env: &Environment) -> Digest {
    env.spec_digest.unwrap_or_else(|| hash::spec_digest(&(project, &env.name, env)))
}

/// [`deploy_spec`] of every environment, explained, in order. Each is independent of the others
/// (dependencies enter a version later, as their versions), so a large plan spreads them over the
/// machine's cores.
fn spec_inputs(project: &str, envs: &[&Environment], label: &Arc<str>) -> Vec<HashInput> {
    const PER_THREAD: usize = 500;
    let threads = crate::parts::threads_for(envs.len(), PER_THREAD);
    let parts = crate::parts::map_parts(envs, threads, |part| {
        part.iter().map(|env| deploy_spec(project, env, Explain::Yes, label)).collect::<Vec<_>>()
    });
    parts.into_iter().flatten().collect()
}

fn step(id: Arc<str>, hasher: VersionHasher, needs: Vec<Arc<str>>, detail: StepDetail) -> Step {
    let (digest, inputs) = hasher.finish();
    Step { id, level: 0, version: digest.version(), digest, needs, detail, inputs }
}

/// What selects an environment's code files: its include and exclude globs.
fn globs(env: &Environment) -> (&[CompactString], &[CompactString]) {
    (&env.code.include, &env.code.exclude)
}

/// The image's own inputs: its spec (not its name or where it is pushed) and the files it reads.
fn image_hasher(image: &Image, root: &Path, files: &mut Files) -> Result<VersionHasher, PlanError> {
    let mut hasher = VersionHasher::new();
    hasher.spec(
        "spec",
        &(
            &image.source,
            &image.apt,
            &image.pip,
            &image.requirements,
            &image.uv_project,
            &image.sources,
            &image.env,
            &image.workdir,
            &image.user,
            &image.platforms,
        ),
    );
    if let ImageSource::Dockerfile { dockerfile, context, .. } = &image.source {
        add_files(&mut hasher, &format!("dockerfile {dockerfile}"), &files.file(root, dockerfile)?);
        // The context as the builder gets it: `.dockerignore` decides, not the bundle rules.
        let context_files = crate::image::job::context_files(&root.join(context))
            .map_err(|message| PlanError::Context { context: context.to_string(), message })?;
        add_files(&mut hasher, &format!("context {context}"), &context_files);
    }
    if let Some(requirements) = &image.requirements {
        add_files(&mut hasher, &format!("requirements {requirements}"), &files.file(root, requirements)?);
    }
    if let Some(uv) = &image.uv_project {
        add_files(&mut hasher, &format!("pyproject {}", uv.pyproject), &files.file(root, &uv.pyproject)?);
        add_files(&mut hasher, &format!("lock {}", uv.lock), &files.file(root, &uv.lock)?);
    }
    for source in &image.sources {
        add_files(&mut hasher, &format!("source {}", source.src), &files.of(&root.join(&source.src))?);
    }
    Ok(hasher)
}

fn describe_source(image: &Image) -> String {
    match &image.source {
        ImageSource::Base { base } => base.to_string(),
        ImageSource::Debian { python } => format!("debian + python {python}"),
        ImageSource::Dockerfile { dockerfile, .. } => format!("Dockerfile {dockerfile}"),
    }
}

/// The first 16 bytes of `id`, zero-padded, as a number: ordered as the ids are wherever two differ
/// there (a shorter id is padded with zeros, below any byte another id has there).
fn id_prefix(id: &str) -> u128 {
    let mut bytes = [0; 16];
    let len = id.len().min(16);
    bytes[..len].copy_from_slice(&id.as_bytes()[..len]);
    u128::from_be_bytes(bytes)
}

/// The order of steps in a plan: by level (the longest path from a step that needs nothing), then by
/// id; each key ends with the position of its step. Each key holds the id's first bytes
/// ([`id_prefix`]), so most comparisons never follow the id to its text. Ids are unique, so the order
/// is total.
type OrderKey<'a> = (usize, u128, &'a str, usize);

fn by_level_and_id(a: &OrderKey, b: &OrderKey) -> std::cmp::Ordering {
    (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| a.2.cmp(b.2))
}

/// The plan from its steps: the bundles (in environment order, so by id) and the images, all on the
/// first level, merged by id; then the deployments, already in plan order (in the parts they were made
/// in) and never on the first level (each needs an image step).
fn lay_out(manifest: &Manifest, bundles: Vec<Step>, mut images: Vec<Step>, deploys: Vec<Vec<Step>>) -> Plan {
    images.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let deploy_count: usize = deploys.iter().map(Vec::len).sum();
    let mut steps: Vec<Step> = Vec::with_capacity(bundles.len() + images.len() + deploy_count);
    let (mut bundles, mut images) = (bundles.into_iter().peekable(), images.into_iter().peekable());
    loop {
        let bundle_first = match (bundles.peek(), images.peek()) {
            (Some(bundle), Some(image)) => bundle.id <= image.id,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        steps.extend(if bundle_first { bundles.next() } else { images.next() });
    }
    // In parts as they were made: each step is moved once, into the plan.
    steps.extend(deploys.into_iter().flatten());
    let depth = steps.last().map_or(0, |s| s.level + 1);
    let mut levels = vec![Vec::new(); depth];
    for step in &steps {
        levels[step.level].push(step.id.clone());
    }
    Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        project: manifest.project.name.to_string(),
        domain: manifest.domain.to_string(),
        steps,
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_prefixes_order_as_the_ids() {
        let ids = [
            "",
            "a",
            "a\0",
            "ab",
            "b",
            "bundle:web",
            "deploy:svc-00001",
            "deploy:svc-00001x",
            "deploy:svc-00002",
            "deploy:svc-0000",
            "image:base",
            "image:base+job",
            "é",
            "zzzzzzzzzzzzzzzz",
            "zzzzzzzzzzzzzzzz!",
        ];
        for a in ids {
            for b in ids {
                let (pa, pb) = (id_prefix(a), id_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn explaining_a_plan_changes_what_it_shows_not_its_versions() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for example in ["frontend-backend", "full-build", "dynamic-environments"] {
            let (_, manifest, _) =
                crate::manifest::load(&examples.join(example).join("flyte.toml"), Some("production"))
                    .unwrap_or_else(|_| panic!("the {example} example loads"));
            let shown = build(&manifest, Explain::Yes).unwrap();
            let bare = build(&manifest, Explain::No).unwrap();
            assert_eq!(shown.levels, bare.levels, "{example}");
            // Resolved without the digests (as `flyte validate` and `flyte config` resolve), the plan
            // takes them itself, the same.
            let path = examples.join(example).join("flyte.toml");
            let parsed = crate::manifest::parse(crate::manifest::read(&path).ok().unwrap()).ok().unwrap();
            let unhashed = parsed.resolve_with("production", crate::manifest::Digests::Skip).manifest.unwrap();
            assert!(unhashed.environments.values().all(|env| env.spec_digest.is_none()));
            let later = build(&unhashed, Explain::No).unwrap();
            let versions = |plan: &Plan| plan.steps.iter().map(|s| (s.id.clone(), s.digest)).collect::<Vec<_>>();
            assert_eq!(versions(&later), versions(&bare), "{example}");
            for (shown, bare) in shown.steps.iter().zip(&bare.steps) {
                assert_eq!((&shown.id, &shown.digest, &shown.needs), (&bare.id, &bare.digest, &bare.needs));
                let digests = |step: &Step| step.inputs.iter().map(|i| (i.label.clone(), i.digest)).collect::<Vec<_>>();
                assert_eq!(digests(shown), digests(bare), "{}", shown.id);
                if shown.id.starts_with("deploy:") {
                    // The spec as JSON: the same value the digest was taken of, there only when asked.
                    let (with, without) = (&shown.inputs[0], &bare.inputs[0]);
                    assert_eq!((&*with.label, without.detail.as_str()), ("spec", ""), "{}", shown.id);
                    let env = &manifest.environments[shown.id.trim_start_matches("deploy:")];
                    let spec = (&manifest.project.name, &env.name, env);
                    assert_eq!(
                        env.spec_digest,
                        Some(hash::spec_digest(&spec)),
                        "{}: the digest validation took",
                        shown.id
                    );
                    assert_eq!(Some(with.digest), env.spec_digest, "{}", shown.id);
                    let value: serde_json::Value = serde_json::from_str(&with.detail).unwrap();
                    assert_eq!(value, serde_json::json!([manifest.project.name, env.name, env]), "{}", shown.id);
                }
            }
        }
    }

    #[test]
    fn dependency_order_keeps_to_the_given_order_where_it_can() {
        // Every dependency sorted before its dependents: the order itself.
        assert_eq!(earliest_first(&[vec![], vec![0], vec![0, 1], vec![], vec![2, 3]]), vec![0, 1, 2, 3, 4]);
        // 0 needs 3 and 1 needs 2: each waits for its dependency, the rest keep their places.
        let dependencies = [vec![3], vec![2], vec![], vec![], vec![0]];
        let order = earliest_first(&dependencies);
        assert_eq!(order, vec![2, 1, 3, 0, 4]);
        let position = |index: usize| order.iter().position(|&i| i == index).unwrap();
        for (index, needs) in dependencies.iter().enumerate() {
            assert!(needs.iter().all(|&need| position(need) < position(index)), "{index} after {needs:?}");
        }
        assert!(earliest_first(&[]).is_empty());
    }
}
