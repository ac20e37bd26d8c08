//! The scope graph that parsing and merging both build.
//!
//! The Python SDK keys scope nodes by name, so a scope name has one set of
//! dependencies across a whole scope string (`a[b] c[b[d]]` gives `a[b[d]]`
//! and `c[b[d]]`); when the same dependency appears both optional and
//! required, required wins. This builder reproduces those semantics with
//! first-appearance order instead of hash order, in linear time and without
//! recursion.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::Scope;
use super::error::ScopeParseError;

/// Below this many entries a linear scan beats hashing.
const SCAN_LIMIT: usize = 12;

pub(super) type NodeId = u32;

/// A fast, unseeded hasher for the builder's lookup tables (the Fx hash of
/// rustc). Nothing iterates these tables, so output order never depends on
/// it; inputs are bounded by the scope string the caller gave.
#[derive(Default)]
pub(super) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

pub(super) type FxBuild = BuildHasherDefault<FxHasher>;

#[derive(Default)]
pub(super) struct GraphBuilder<'a> {
    names: Vec<&'a str>,
    name_index: HashMap<&'a str, NodeId, FxBuild>,
    /// Out-edges of each node, in first-appearance order: (destination, optional).
    edges: Vec<Vec<(NodeId, bool)>>,
    /// (source, destination) to position in `edges[source]`, for nodes whose
    /// degree outgrew a linear scan.
    edge_index: HashMap<(NodeId, NodeId), usize, FxBuild>,
    roots: Vec<(NodeId, bool)>,
    root_index: HashSet<(NodeId, bool), FxBuild>,
}

impl<'a> GraphBuilder<'a> {
    pub(super) fn node(&mut self, name: &'a str) -> NodeId {
        if self.name_index.is_empty() {
            if let Some(pos) = self.names.iter().position(|n| *n == name) {
                return id(pos);
            }
            if self.names.len() < SCAN_LIMIT {
                self.names.push(name);
                self.edges.push(Vec::new());
                return id(self.names.len() - 1);
            }
            self.name_index = self
                .names
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, id(i)))
                .collect();
        }
        let next = id(self.names.len());
        let node = *self.name_index.entry(name).or_insert(next);
        if node == next {
            self.names.push(name);
            self.edges.push(Vec::new());
        }
        node
    }

    pub(super) fn add_root(&mut self, node: NodeId, optional: bool) {
        if self.root_index.is_empty() {
            if self.roots.contains(&(node, optional)) {
                return;
            }
            if self.roots.len() < SCAN_LIMIT {
                self.roots.push((node, optional));
                return;
            }
            self.root_index = self.roots.iter().copied().collect();
        }
        if self.root_index.insert((node, optional)) {
            self.roots.push((node, optional));
        }
    }

    pub(super) fn add_edge(&mut self, source: NodeId, dest: NodeId, optional: bool) {
        let out = &mut self.edges[source as usize];
        let existing = if out.len() <= SCAN_LIMIT {
            out.iter().position(|(d, _)| *d == dest)
        } else {
            if !self.edge_index.contains_key(&(source, out[0].0)) {
                for (pos, (d, _)) in out.iter().enumerate() {
                    self.edge_index.insert((source, *d), pos);
                }
            }
            self.edge_index.get(&(source, dest)).copied()
        };
        if let Some(pos) = existing {
            // Required beats optional.
            out[pos].1 &= optional;
        } else {
            if out.len() > SCAN_LIMIT {
                self.edge_index.insert((source, dest), out.len());
            }
            out.push((dest, optional));
        }
    }

    /// Checks for cycles and builds the scopes, one per distinct
    /// (name, optional) root, in first-appearance order.
    pub(super) fn build(self) -> Result<Vec<Scope>, ScopeParseError> {
        let post_order = self.post_order()?;
        let n = self.names.len();
        let mut dependencies: Vec<Option<Vec<Scope>>> = vec![None; n];
        let mut variants: Vec<[Option<Scope>; 2]> = vec![[None, None]; n];
        let mut variant = |deps: &[Option<Vec<Scope>>], node: NodeId, optional: bool| -> Scope {
            let slot = &mut variants[node as usize][usize::from(optional)];
            slot.get_or_insert_with(|| {
                let deps = deps[node as usize].clone().unwrap_or_default();
                Scope::from_parts(self.names[node as usize].into(), optional, deps)
            })
            .clone()
        };
        for node in post_order {
            let deps = self.edges[node as usize]
                .iter()
                .map(|&(dest, optional)| variant(&dependencies, dest, optional))
                .collect();
            dependencies[node as usize] = Some(deps);
        }
        Ok(self
            .roots
            .iter()
            .map(|&(node, optional)| variant(&dependencies, node, optional))
            .collect())
    }

    /// Depth-first post-order from the roots (children before parents), or
    /// the cycle error naming the node a back edge reaches.
    fn post_order(&self) -> Result<Vec<NodeId>, ScopeParseError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut mark = vec![Mark::New; self.names.len()];
        let mut order = Vec::with_capacity(self.names.len());
        // (node, index of the next out-edge to explore)
        let mut stack: Vec<(NodeId, usize)> = Vec::new();
        for &(root, _) in &self.roots {
            if mark[root as usize] != Mark::New {
                continue;
            }
            mark[root as usize] = Mark::OnPath;
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                if let Some(&(dest, _)) = self.edges[node as usize].get(next) {
                    top.1 += 1;
                    match mark[dest as usize] {
                        Mark::OnPath => {
                            return Err(ScopeParseError::Cycle {
                                scope: self.names[dest as usize].to_owned(),
                            });
                        }
                        Mark::New => {
                            mark[dest as usize] = Mark::OnPath;
                            stack.push((dest, 0));
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node as usize] = Mark::Done;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }
}

fn id(index: usize) -> NodeId {
    NodeId::try_from(index).expect("more than 4 billion distinct scope names")
}
