//! An in-memory Qdrant that speaks Qdrant's real gRPC protocol.
//!
//! The retrieval service talks to Qdrant through the real
//! [`qdrant_client::Qdrant`] client (gRPC over tonic). Qdrant itself cannot run
//! on this machine (no Docker), and mocking the client would leave the wire
//! protocol — request building, error mapping, reconnects — untested. So this
//! module serves the server traits that `qdrant-client` ships
//! ([`qdrant_server::Qdrant`], [`collections_server::Collections`],
//! [`points_server::Points`]) from a `HashMap` of collections, and the code
//! under test points its `QDRANT_URL` at [`FakeQdrant::url`].
//!
//! What it really implements (everything the retrieval service needs):
//!
//! - `Qdrant/HealthCheck`;
//! - `Collections/{Create, Get, List, Delete, CollectionExists}` for collections
//!   with one unnamed dense vector (`VectorParams { size, distance }`);
//! - `Points/{Upsert, Delete, Get, Scroll, Count, Search, Query}`: points with a
//!   numeric or UUID id, one unnamed dense vector (sent either as the
//!   deprecated `Vector { data }` or as `Vector { vector: Dense(..) }`) and a
//!   payload; exact nearest-neighbour scoring with the collection's distance
//!   (cosine normalises both vectors), ties broken by id.
//!
//! Errors use the status codes and message style of Qdrant 1.15
//! (`Not found: Collection `x` doesn't exist!`, `Wrong input: Vector
//! dimension error: expected dim: 4, got 3`). Every other RPC, and features this
//! fake does not evaluate (non-empty filters, named/sparse vectors, prefetch,
//! non-`nearest` queries), answer `Status::unimplemented` with a message naming
//! the gap, so a test never silently gets a wrong answer.
//!
//! Outages are real: [`FakeQdrant::stop`] closes the listening socket and every
//! open connection (clients see connection refused), and
//! [`FakeQdrant::restart`] serves the same data on the same port again.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qdrant_client::qdrant::collections_server::{self, CollectionsServer};
use qdrant_client::qdrant::points_server::{self, PointsServer};
use qdrant_client::qdrant::qdrant_server::{self, QdrantServer};
use qdrant_client::qdrant::{
    ChangeAliases, ClearPayloadPoints, CollectionClusterInfoRequest, CollectionClusterInfoResponse,
    CollectionConfig, CollectionDescription, CollectionExists, CollectionExistsRequest,
    CollectionExistsResponse, CollectionInfo, CollectionOperationResponse, CollectionParams,
    CollectionStatus, CountPoints, CountResponse, CountResult, CreateCollection,
    CreateFieldIndexCollection, CreateShardKeyRequest, CreateShardKeyResponse,
    CreateVectorNameRequest, DeleteCollection, DeleteFieldIndexCollection, DeletePayloadPoints,
    DeletePointVectors, DeletePoints, DeleteShardKeyRequest, DeleteShardKeyResponse,
    DeleteVectorNameRequest, DenseVector, DiscoverBatchPoints, DiscoverBatchResponse,
    DiscoverPoints, DiscoverResponse, Distance, FacetCounts, FacetResponse, Filter,
    GetCollectionInfoRequest, GetCollectionInfoResponse, GetPoints, GetResponse, HealthCheckReply,
    HealthCheckRequest, ListAliasesRequest, ListAliasesResponse, ListCollectionAliasesRequest,
    ListCollectionsRequest, ListCollectionsResponse, ListShardKeysRequest, ListShardKeysResponse,
    OptimizerStatus, PointId, PointStruct, PointsOperationResponse, QueryBatchPoints,
    QueryBatchResponse, QueryGroupsResponse, QueryPointGroups, QueryPoints, QueryResponse,
    RecommendBatchPoints, RecommendBatchResponse, RecommendGroupsResponse, RecommendPointGroups,
    RecommendPoints, RecommendResponse, RetrievedPoint, ScoredPoint, ScrollPoints, ScrollResponse,
    SearchBatchPoints, SearchBatchResponse, SearchGroupsResponse, SearchMatrixOffsetsResponse,
    SearchMatrixPairsResponse, SearchMatrixPoints, SearchPointGroups, SearchPoints, SearchResponse,
    SetPayloadPoints, UpdateBatchPoints, UpdateBatchResponse, UpdateCollection,
    UpdateCollectionClusterSetupRequest, UpdateCollectionClusterSetupResponse, UpdatePointVectors,
    UpdateResult, UpdateStatus, Value, VectorOutput, VectorParams, VectorsConfig, VectorsOutput,
    WithPayloadSelector, WithVectorsSelector, point_id, points_selector, query, vector,
    vector_input, vector_output, vectors, vectors_config, vectors_output, with_payload_selector,
    with_vectors_selector,
};
use tonic::{Request, Response, Status};

/// Version reported by `HealthCheck` (the Qdrant this fake imitates).
const QDRANT_VERSION: &str = "1.15.0";
/// Qdrant's default `limit` for `Query` and `Scroll` when the request has none.
const DEFAULT_LIMIT: u64 = 10;

/// An in-memory Qdrant gRPC server on `127.0.0.1`, for tests.
///
/// It runs on its own thread with its own multi-thread tokio runtime, so it
/// works from any test harness (actix, tokio, or a plain `#[test]`). Dropping
/// it stops the server.
pub struct FakeQdrant {
    addr: SocketAddr,
    state: Arc<State>,
    server: Option<RunningServer>,
}

impl FakeQdrant {
    /// Start on `127.0.0.1:0` (a free port chosen by the OS).
    ///
    /// # Panics
    /// If the listener cannot be bound or the server thread cannot start.
    pub fn start() -> FakeQdrant {
        let state = Arc::new(State::default());
        let (addr, server) = RunningServer::spawn(
            Arc::clone(&state),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .unwrap_or_else(|e| panic!("fake_qdrant: cannot start: {e}"));
        FakeQdrant {
            addr,
            state,
            server: Some(server),
        }
    }

    /// The address the server listens on (stays the same across
    /// [`stop`](Self::stop)/[`restart`](Self::restart)).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: what `QDRANT_URL` takes. `qdrant-client`
    /// speaks gRPC to it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of points in `collection`, or `None` if it does not exist.
    pub fn points_count(&self, collection: &str) -> Option<u64> {
        lock(&self.state.collections)
            .get(collection)
            .map(|c| c.points.len() as u64)
    }

    /// Vector size of `collection`, or `None` if it does not exist.
    pub fn collection_dimension(&self, collection: &str) -> Option<u64> {
        lock(&self.state.collections)
            .get(collection)
            .map(|c| c.dimension)
    }

    /// The gRPC methods received so far, in order, as `Service/Method`
    /// (`"Collections/Create"`, `"Points/Upsert"`, `"Points/Query"`, ...),
    /// including the ones that were rejected or are unimplemented.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state.calls).clone()
    }

    /// Number of `Points/Upsert` requests that were applied (rejected ones,
    /// e.g. on a dimension mismatch, are not counted; see [`calls`](Self::calls)).
    pub fn upsert_batches(&self) -> usize {
        self.state.upsert_batches.load(Ordering::SeqCst)
    }

    /// A real outage: stop serving, close the listening socket and drop every
    /// open connection. Clients get connection refused until
    /// [`restart`](Self::restart). The data is kept. Does nothing if already
    /// stopped. Returns once the socket is closed.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Serve again on the same port with the same data (Qdrant came back).
    /// Does nothing if the server is running.
    ///
    /// # Panics
    /// If the port cannot be bound again within a few seconds.
    pub fn restart(&mut self) {
        if self.server.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match RunningServer::spawn(Arc::clone(&self.state), self.addr) {
                Ok((_, server)) => {
                    self.server = Some(server);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("fake_qdrant: cannot restart on {}: {e}", self.addr),
            }
        }
    }

    /// Pre-create a collection with an unnamed cosine vector of `dimension`
    /// (e.g. to test a dimension mismatch). An existing collection of that
    /// name is replaced, points included. Not recorded in [`calls`](Self::calls).
    pub fn create_collection(&self, name: &str, dimension: u64) {
        lock(&self.state.collections).insert(
            name.to_owned(),
            Collection::new(dimension, Distance::Cosine),
        );
    }
}

impl Drop for FakeQdrant {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for FakeQdrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeQdrant")
            .field("addr", &self.addr)
            .field("running", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

/// One serving period: a thread that owns a tokio runtime, which owns the
/// listener and every connection task. Stopping drops the runtime, which
/// closes all of those sockets.
struct RunningServer {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl RunningServer {
    fn spawn(state: Arc<State>, bind_addr: SocketAddr) -> io::Result<(SocketAddr, RunningServer)> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-qdrant".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-qdrant-rt")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(serve(state, bind_addr, ready_tx, shutdown_rx));
                // Cancels the connection tasks tonic spawned: their sockets
                // close, so connected clients see the outage at once.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        match ready_rx.recv() {
            Ok(Ok(addr)) => Ok((addr, RunningServer { shutdown, thread })),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("fake_qdrant server thread exited early"))
            }
        }
    }

    fn stop(self) {
        // The receiver is gone only if the server already ended on its own.
        let _ = self.shutdown.send(());
        if self.thread.join().is_err() {
            eprintln!("fake_qdrant: server thread panicked");
        }
    }
}

/// Bind (with `SO_REUSEADDR`, so a restart can take the same port back while
/// old connections sit in `TIME_WAIT`), report the address, and serve until
/// `shutdown` fires.
async fn serve(
    state: Arc<State>,
    bind_addr: SocketAddr,
    ready: std::sync::mpsc::Sender<io::Result<SocketAddr>>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match bind(bind_addr) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let local_addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let incoming = futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            // tonic sets this itself only for listeners it binds.
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    });
    let service = FakeQdrantService { state };
    let server = tonic::transport::Server::builder()
        .add_service(QdrantServer::new(service.clone()))
        .add_service(CollectionsServer::new(service.clone()))
        .add_service(PointsServer::new(service))
        .serve_with_incoming(incoming);
    let _ = ready.send(Ok(local_addr));
    // On shutdown the server future is dropped here, and the listener with it.
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                eprintln!("fake_qdrant: server error: {e}");
            }
        }
        _ = shutdown => {}
    }
}

fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test must not turn every later call into a poison panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------

#[derive(Default)]
struct State {
    collections: Mutex<HashMap<String, Collection>>,
    calls: Mutex<Vec<String>>,
    upsert_batches: AtomicUsize,
    operation_id: AtomicU64,
}

struct Collection {
    dimension: u64,
    distance: Distance,
    /// Ordered like Qdrant orders ids: numeric ids first, then UUIDs.
    points: BTreeMap<PointKey, StoredPoint>,
}

impl Collection {
    fn new(dimension: u64, distance: Distance) -> Self {
        Collection {
            dimension,
            distance,
            points: BTreeMap::new(),
        }
    }

    fn vector_params(&self) -> VectorParams {
        VectorParams {
            size: self.dimension,
            distance: self.distance as i32,
            ..Default::default()
        }
    }

    fn check_dimension(&self, got: usize) -> Result<(), Status> {
        if got as u64 == self.dimension {
            Ok(())
        } else {
            Err(Status::invalid_argument(format!(
                "Wrong input: Vector dimension error: expected dim: {}, got {got}",
                self.dimension
            )))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PointKey {
    Num(u64),
    /// Canonical form: lowercase, hyphenated.
    Uuid(String),
}

impl PointKey {
    fn parse(id: Option<&PointId>) -> Result<PointKey, Status> {
        match id.and_then(|id| id.point_id_options.as_ref()) {
            Some(point_id::PointIdOptions::Num(n)) => Ok(PointKey::Num(*n)),
            Some(point_id::PointIdOptions::Uuid(s)) => canonical_uuid(s)
                .map(PointKey::Uuid)
                .ok_or_else(|| Status::invalid_argument(format!("Unable to parse UUID: {s}"))),
            None => Err(Status::invalid_argument(
                "Wrong input: point id is missing (PointId has no value)",
            )),
        }
    }

    fn to_point_id(&self) -> PointId {
        let options = match self {
            PointKey::Num(n) => point_id::PointIdOptions::Num(*n),
            PointKey::Uuid(s) => point_id::PointIdOptions::Uuid(s.clone()),
        };
        PointId {
            point_id_options: Some(options),
        }
    }
}

/// Accepts the hyphenated and the simple (32 hex digits) UUID forms.
fn canonical_uuid(s: &str) -> Option<String> {
    let hyphenated = s.len() == 36
        && s.char_indices()
            .all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
    let hex: String = if hyphenated {
        s.chars().filter(|c| *c != '-').collect()
    } else {
        s.to_owned()
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

struct StoredPoint {
    vector: Vec<f32>,
    payload: HashMap<String, Value>,
}

// ---------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------

fn not_found(collection: &str) -> Status {
    Status::not_found(format!(
        "Not found: Collection `{collection}` doesn't exist!"
    ))
}

/// The `time` field of every response, in seconds, like Qdrant reports it.
fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64().max(1e-6)
}

fn reject_filter(filter: Option<&Filter>) -> Result<(), Status> {
    match filter {
        Some(filter) if *filter != Filter::default() => Err(Status::unimplemented(
            "fake_qdrant does not evaluate filters",
        )),
        _ => Ok(()),
    }
}

fn reject_named_vector(name: Option<&str>) -> Result<(), Status> {
    match name {
        Some(name) if !name.is_empty() => Err(Status::invalid_argument(format!(
            "Wrong input: Not existing vector name error: {name}"
        ))),
        _ => Ok(()),
    }
}

/// The unnamed dense vector of a point, in either encoding `qdrant-client`
/// may send: `Vector { vector: Some(Dense(..)) }` (1.16+) or the deprecated
/// `Vector { data, .. }`.
#[allow(deprecated)] // reading `Vector::data`/`indices` is the point here
fn dense_vector(vector: qdrant_client::qdrant::Vector) -> Result<Vec<f32>, Status> {
    match vector.vector {
        Some(vector::Vector::Dense(DenseVector { data })) => Ok(data),
        Some(_) => Err(Status::invalid_argument(
            "Wrong input: fake_qdrant supports only dense vectors",
        )),
        None if vector.indices.is_some() => Err(Status::invalid_argument(
            "Wrong input: fake_qdrant supports only dense vectors",
        )),
        None => Ok(vector.data),
    }
}

fn point_vector(point: &mut PointStruct) -> Result<Vec<f32>, Status> {
    let options = point
        .vectors
        .take()
        .and_then(|v| v.vectors_options)
        .ok_or_else(|| Status::invalid_argument("Wrong input: point has no vector"))?;
    match options {
        vectors::VectorsOptions::Vector(v) => dense_vector(v),
        vectors::VectorsOptions::Vectors(mut named) => {
            // The unnamed vector may also be sent as the named vector "".
            if named.vectors.len() == 1
                && let Some(v) = named.vectors.remove("")
            {
                return dense_vector(v);
            }
            let name = named.vectors.keys().find(|k| !k.is_empty()).cloned();
            Err(Status::invalid_argument(format!(
                "Wrong input: Not existing vector name error: {}",
                name.unwrap_or_default()
            )))
        }
    }
}

fn select_payload(
    selector: Option<&WithPayloadSelector>,
    default: bool,
    payload: &HashMap<String, Value>,
) -> HashMap<String, Value> {
    match selector.and_then(|s| s.selector_options.as_ref()) {
        None if default => payload.clone(),
        None => HashMap::new(),
        Some(with_payload_selector::SelectorOptions::Enable(true)) => payload.clone(),
        Some(with_payload_selector::SelectorOptions::Enable(false)) => HashMap::new(),
        Some(with_payload_selector::SelectorOptions::Include(include)) => payload
            .iter()
            .filter(|(k, _)| include.fields.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(with_payload_selector::SelectorOptions::Exclude(exclude)) => payload
            .iter()
            .filter(|(k, _)| !exclude.fields.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn select_vectors(selector: Option<&WithVectorsSelector>, vector: &[f32]) -> Option<VectorsOutput> {
    let wanted = match selector.and_then(|s| s.selector_options.as_ref()) {
        None | Some(with_vectors_selector::SelectorOptions::Enable(false)) => false,
        Some(with_vectors_selector::SelectorOptions::Enable(true)) => true,
        Some(with_vectors_selector::SelectorOptions::Include(names)) => {
            names.names.iter().any(String::is_empty)
        }
    };
    wanted.then(|| VectorsOutput {
        vectors_options: Some(vectors_output::VectorsOptions::Vector(VectorOutput {
            vector: Some(vector_output::Vector::Dense(DenseVector {
                data: vector.to_vec(),
            })),
            ..Default::default()
        })),
    })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Qdrant's score for `distance`: similarity for Cosine/Dot (higher is
/// closer), distance for Euclid/Manhattan (lower is closer).
fn score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine => {
            let norms = dot(a, a).sqrt() * dot(b, b).sqrt();
            if norms == 0.0 { 0.0 } else { dot(a, b) / norms }
        }
        Distance::Euclid => a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt(),
        Distance::Manhattan => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
        Distance::Dot | Distance::UnknownDistance => dot(a, b),
    }
}

fn higher_is_closer(distance: Distance) -> bool {
    matches!(
        distance,
        Distance::Cosine | Distance::Dot | Distance::UnknownDistance
    )
}

/// Parameters shared by `Search` and `Query`.
struct Nearest<'a> {
    collection: &'a str,
    vector: Vec<f32>,
    limit: u64,
    offset: u64,
    score_threshold: Option<f32>,
    with_payload: Option<&'a WithPayloadSelector>,
    with_vectors: Option<&'a WithVectorsSelector>,
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct FakeQdrantService {
    state: Arc<State>,
}

impl FakeQdrantService {
    fn record(&self, call: &str) {
        lock(&self.state.calls).push(call.to_owned());
    }

    fn collections(&self) -> MutexGuard<'_, HashMap<String, Collection>> {
        lock(&self.state.collections)
    }

    fn operation_result(&self, wait: Option<bool>) -> Option<UpdateResult> {
        let status = if wait.unwrap_or(false) {
            UpdateStatus::Completed
        } else {
            UpdateStatus::Acknowledged
        };
        Some(UpdateResult {
            operation_id: Some(self.state.operation_id.fetch_add(1, Ordering::SeqCst)),
            status: status as i32,
        })
    }

    fn health_check(&self, _: HealthCheckRequest) -> Result<HealthCheckReply, Status> {
        Ok(HealthCheckReply {
            title: "qdrant - vector search engine".to_owned(),
            version: QDRANT_VERSION.to_owned(),
            commit: None,
        })
    }

    fn create_collection(
        &self,
        req: CreateCollection,
    ) -> Result<CollectionOperationResponse, Status> {
        let started = Instant::now();
        let name = req.collection_name;
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "Validation error in body: collection_name: must not be empty",
            ));
        }
        let params = match req.vectors_config.and_then(|c| c.config) {
            Some(vectors_config::Config::Params(params)) => params,
            Some(vectors_config::Config::ParamsMap(_)) => {
                return Err(Status::unimplemented(
                    "fake_qdrant supports only a single unnamed vector per collection",
                ));
            }
            None => {
                return Err(Status::invalid_argument(
                    "Wrong input: fake_qdrant needs vectors_config with VectorParams",
                ));
            }
        };
        if params.size == 0 {
            return Err(Status::invalid_argument(
                "Validation error in body: vectors_config.size: value 0 invalid, must be 1 or larger",
            ));
        }
        let distance = match Distance::try_from(params.distance) {
            Ok(Distance::UnknownDistance) | Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "Wrong input: unknown distance {}",
                    params.distance
                )));
            }
            Ok(distance) => distance,
        };
        let mut collections = self.collections();
        if collections.contains_key(&name) {
            return Err(Status::already_exists(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        collections.insert(name, Collection::new(params.size, distance));
        Ok(CollectionOperationResponse {
            result: true,
            time: elapsed(started),
        })
    }

    fn get_collection(
        &self,
        req: GetCollectionInfoRequest,
    ) -> Result<GetCollectionInfoResponse, Status> {
        let started = Instant::now();
        let collections = self.collections();
        let collection = collections
            .get(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        let points = collection.points.len() as u64;
        let info = CollectionInfo {
            status: CollectionStatus::Green as i32,
            optimizer_status: Some(OptimizerStatus {
                ok: true,
                error: String::new(),
            }),
            segments_count: 1,
            config: Some(CollectionConfig {
                params: Some(CollectionParams {
                    shard_number: 1,
                    vectors_config: Some(VectorsConfig {
                        config: Some(vectors_config::Config::Params(collection.vector_params())),
                    }),
                    replication_factor: Some(1),
                    write_consistency_factor: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            points_count: Some(points),
            indexed_vectors_count: Some(0),
            ..Default::default()
        };
        Ok(GetCollectionInfoResponse {
            result: Some(info),
            time: elapsed(started),
        })
    }

    fn list_collections(
        &self,
        _: ListCollectionsRequest,
    ) -> Result<ListCollectionsResponse, Status> {
        let started = Instant::now();
        let mut names: Vec<String> = self.collections().keys().cloned().collect();
        names.sort();
        Ok(ListCollectionsResponse {
            collections: names
                .into_iter()
                .map(|name| CollectionDescription { name })
                .collect(),
            time: elapsed(started),
        })
    }

    fn delete_collection(
        &self,
        req: DeleteCollection,
    ) -> Result<CollectionOperationResponse, Status> {
        let started = Instant::now();
        let existed = self.collections().remove(&req.collection_name).is_some();
        Ok(CollectionOperationResponse {
            result: existed,
            time: elapsed(started),
        })
    }

    fn collection_exists(
        &self,
        req: CollectionExistsRequest,
    ) -> Result<CollectionExistsResponse, Status> {
        let started = Instant::now();
        let exists = self.collections().contains_key(&req.collection_name);
        Ok(CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: elapsed(started),
        })
    }

    fn upsert(
        &self,
        req: qdrant_client::qdrant::UpsertPoints,
    ) -> Result<PointsOperationResponse, Status> {
        let started = Instant::now();
        reject_filter(req.update_filter.as_ref())?;
        let mut collections = self.collections();
        let collection = collections
            .get_mut(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        // Validate the whole batch first: Qdrant applies all of it or none.
        let mut batch = Vec::with_capacity(req.points.len());
        for mut point in req.points {
            let key = PointKey::parse(point.id.as_ref())?;
            let vector = point_vector(&mut point)?;
            collection.check_dimension(vector.len())?;
            batch.push((
                key,
                StoredPoint {
                    vector,
                    payload: point.payload,
                },
            ));
        }
        collection.points.extend(batch);
        drop(collections);
        self.state.upsert_batches.fetch_add(1, Ordering::SeqCst);
        Ok(PointsOperationResponse {
            result: self.operation_result(req.wait),
            time: elapsed(started),
            usage: None,
        })
    }

    fn delete_points(&self, req: DeletePoints) -> Result<PointsOperationResponse, Status> {
        let started = Instant::now();
        let mut collections = self.collections();
        let collection = collections
            .get_mut(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        match req.points.and_then(|p| p.points_selector_one_of) {
            Some(points_selector::PointsSelectorOneOf::Points(list)) => {
                let keys = list
                    .ids
                    .iter()
                    .map(|id| PointKey::parse(Some(id)))
                    .collect::<Result<Vec<_>, _>>()?;
                for key in keys {
                    collection.points.remove(&key);
                }
            }
            Some(points_selector::PointsSelectorOneOf::Filter(filter)) => {
                reject_filter(Some(&filter))?;
                // An empty filter matches every point.
                collection.points.clear();
            }
            None => {
                return Err(Status::invalid_argument(
                    "Wrong input: points selector is missing",
                ));
            }
        }
        drop(collections);
        Ok(PointsOperationResponse {
            result: self.operation_result(req.wait),
            time: elapsed(started),
            usage: None,
        })
    }

    fn get_points(&self, req: GetPoints) -> Result<GetResponse, Status> {
        let started = Instant::now();
        let collections = self.collections();
        let collection = collections
            .get(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        let mut result = Vec::with_capacity(req.ids.len());
        for id in &req.ids {
            let key = PointKey::parse(Some(id))?;
            // Qdrant skips ids it does not have.
            if let Some(point) = collection.points.get(&key) {
                result.push(RetrievedPoint {
                    id: Some(key.to_point_id()),
                    payload: select_payload(req.with_payload.as_ref(), true, &point.payload),
                    vectors: select_vectors(req.with_vectors.as_ref(), &point.vector),
                    ..Default::default()
                });
            }
        }
        Ok(GetResponse {
            result,
            time: elapsed(started),
            usage: None,
        })
    }

    fn scroll(&self, req: ScrollPoints) -> Result<ScrollResponse, Status> {
        let started = Instant::now();
        reject_filter(req.filter.as_ref())?;
        if req.order_by.is_some() {
            return Err(Status::unimplemented(
                "fake_qdrant does not support order_by",
            ));
        }
        let collections = self.collections();
        let collection = collections
            .get(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        let limit = req.limit.map_or(DEFAULT_LIMIT, u64::from) as usize;
        let start = req
            .offset
            .as_ref()
            .map(|id| PointKey::parse(Some(id)))
            .transpose()?;
        let mut iter = match start {
            Some(start) => collection.points.range(start..),
            None => collection.points.range(..),
        };
        let result = iter
            .by_ref()
            .take(limit)
            .map(|(key, point)| RetrievedPoint {
                id: Some(key.to_point_id()),
                payload: select_payload(req.with_payload.as_ref(), true, &point.payload),
                vectors: select_vectors(req.with_vectors.as_ref(), &point.vector),
                ..Default::default()
            })
            .collect();
        let next_page_offset = iter.next().map(|(key, _)| key.to_point_id());
        Ok(ScrollResponse {
            next_page_offset,
            result,
            time: elapsed(started),
            usage: None,
        })
    }

    fn count(&self, req: CountPoints) -> Result<CountResponse, Status> {
        let started = Instant::now();
        reject_filter(req.filter.as_ref())?;
        let collections = self.collections();
        let collection = collections
            .get(&req.collection_name)
            .ok_or_else(|| not_found(&req.collection_name))?;
        // Always exact, whatever `exact` says.
        Ok(CountResponse {
            result: Some(CountResult {
                count: collection.points.len() as u64,
            }),
            time: elapsed(started),
            usage: None,
        })
    }

    fn nearest(&self, req: Nearest<'_>) -> Result<Vec<ScoredPoint>, Status> {
        if req.limit == 0 {
            return Err(Status::invalid_argument(
                "Validation error in body: limit: value 0 invalid, must be 1 or larger",
            ));
        }
        let collections = self.collections();
        let collection = collections
            .get(req.collection)
            .ok_or_else(|| not_found(req.collection))?;
        collection.check_dimension(req.vector.len())?;
        let distance = collection.distance;
        let higher = higher_is_closer(distance);
        let mut scored: Vec<(f32, &PointKey, &StoredPoint)> = collection
            .points
            .iter()
            .map(|(key, point)| (score(distance, &req.vector, &point.vector), key, point))
            .filter(|(s, _, _)| match req.score_threshold {
                None => true,
                Some(t) if higher => *s >= t,
                Some(t) => *s <= t,
            })
            .collect();
        scored.sort_by(|(a, ka, _), (b, kb, _)| {
            let by_score = if higher {
                b.total_cmp(a)
            } else {
                a.total_cmp(b)
            };
            by_score.then_with(|| ka.cmp(kb))
        });
        Ok(scored
            .into_iter()
            .skip(req.offset as usize)
            .take(req.limit as usize)
            .map(|(score, key, point)| ScoredPoint {
                id: Some(key.to_point_id()),
                payload: select_payload(req.with_payload, false, &point.payload),
                score,
                version: 0,
                vectors: select_vectors(req.with_vectors, &point.vector),
                ..Default::default()
            })
            .collect())
    }

    fn search(&self, req: SearchPoints) -> Result<SearchResponse, Status> {
        let started = Instant::now();
        reject_filter(req.filter.as_ref())?;
        reject_named_vector(req.vector_name.as_deref())?;
        if req.sparse_indices.is_some() {
            return Err(Status::invalid_argument(
                "Wrong input: fake_qdrant supports only dense vectors",
            ));
        }
        let result = self.nearest(Nearest {
            collection: &req.collection_name,
            vector: req.vector,
            limit: req.limit,
            offset: req.offset.unwrap_or(0),
            score_threshold: req.score_threshold,
            with_payload: req.with_payload.as_ref(),
            with_vectors: req.with_vectors.as_ref(),
        })?;
        Ok(SearchResponse {
            result,
            time: elapsed(started),
            usage: None,
        })
    }

    fn query(&self, req: QueryPoints) -> Result<QueryResponse, Status> {
        let started = Instant::now();
        reject_filter(req.filter.as_ref())?;
        reject_named_vector(req.using.as_deref())?;
        if !req.prefetch.is_empty() {
            return Err(Status::unimplemented(
                "fake_qdrant does not support prefetch",
            ));
        }
        if req.lookup_from.is_some() {
            return Err(Status::unimplemented(
                "fake_qdrant does not support lookup_from",
            ));
        }
        let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = req.offset.unwrap_or(0);
        let result = match req.query.and_then(|q| q.variant) {
            Some(query::Variant::Nearest(input)) => match input.variant {
                Some(vector_input::Variant::Dense(DenseVector { data })) => {
                    self.nearest(Nearest {
                        collection: &req.collection_name,
                        vector: data,
                        limit,
                        offset,
                        score_threshold: req.score_threshold,
                        with_payload: req.with_payload.as_ref(),
                        with_vectors: req.with_vectors.as_ref(),
                    })?
                }
                _ => {
                    return Err(Status::unimplemented(
                        "fake_qdrant supports only `nearest` queries with a dense vector",
                    ));
                }
            },
            // No query: Qdrant returns points in id order, like scroll.
            None => {
                let collections = self.collections();
                let collection = collections
                    .get(&req.collection_name)
                    .ok_or_else(|| not_found(&req.collection_name))?;
                collection
                    .points
                    .iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .map(|(key, point)| ScoredPoint {
                        id: Some(key.to_point_id()),
                        payload: select_payload(req.with_payload.as_ref(), false, &point.payload),
                        vectors: select_vectors(req.with_vectors.as_ref(), &point.vector),
                        ..Default::default()
                    })
                    .collect()
            }
            Some(_) => {
                return Err(Status::unimplemented(
                    "fake_qdrant supports only `nearest` queries with a dense vector",
                ));
            }
        };
        Ok(QueryResponse {
            result,
            time: elapsed(started),
            usage: None,
        })
    }
}

// ---------------------------------------------------------------------------
// gRPC trait impls
// ---------------------------------------------------------------------------

/// Implements a generated tonic service trait. Every call is recorded as
/// `"$service/$Method"`; `implemented` methods delegate to the synchronous
/// handler named after `=>`, the others answer `Status::unimplemented`.
macro_rules! grpc_service {
    (
        $service:literal, $trait:path;
        implemented {
            $( $method:ident $grpc:literal ($req:ty) -> $resp:ty => $handler:ident; )*
        }
        unimplemented {
            $( $umethod:ident $ugrpc:literal ($ureq:ty) -> $uresp:ty; )*
        }
    ) => {
        #[tonic::async_trait]
        impl $trait for FakeQdrantService {
            $(
                async fn $method(
                    &self,
                    request: Request<$req>,
                ) -> Result<Response<$resp>, Status> {
                    self.record(concat!($service, "/", $grpc));
                    self.$handler(request.into_inner()).map(Response::new)
                }
            )*
            $(
                async fn $umethod(
                    &self,
                    _request: Request<$ureq>,
                ) -> Result<Response<$uresp>, Status> {
                    self.record(concat!($service, "/", $ugrpc));
                    Err(Status::unimplemented(concat!(
                        "fake_qdrant does not implement ", $service, "/", $ugrpc
                    )))
                }
            )*
        }
    };
}

grpc_service! {
    "Qdrant", qdrant_server::Qdrant;
    implemented {
        health_check "HealthCheck" (HealthCheckRequest) -> HealthCheckReply => health_check;
    }
    unimplemented {}
}

grpc_service! {
    "Collections", collections_server::Collections;
    implemented {
        get "Get" (GetCollectionInfoRequest) -> GetCollectionInfoResponse => get_collection;
        list "List" (ListCollectionsRequest) -> ListCollectionsResponse => list_collections;
        create "Create" (CreateCollection) -> CollectionOperationResponse => create_collection;
        delete "Delete" (DeleteCollection) -> CollectionOperationResponse => delete_collection;
        collection_exists "CollectionExists" (CollectionExistsRequest) -> CollectionExistsResponse
            => collection_exists;
    }
    unimplemented {
        update "Update" (UpdateCollection) -> CollectionOperationResponse;
        update_aliases "UpdateAliases" (ChangeAliases) -> CollectionOperationResponse;
        list_collection_aliases "ListCollectionAliases" (ListCollectionAliasesRequest)
            -> ListAliasesResponse;
        list_aliases "ListAliases" (ListAliasesRequest) -> ListAliasesResponse;
        collection_cluster_info "CollectionClusterInfo" (CollectionClusterInfoRequest)
            -> CollectionClusterInfoResponse;
        update_collection_cluster_setup "UpdateCollectionClusterSetup"
            (UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
        create_shard_key "CreateShardKey" (CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key "DeleteShardKey" (DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys "ListShardKeys" (ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

grpc_service! {
    "Points", points_server::Points;
    implemented {
        upsert "Upsert" (qdrant_client::qdrant::UpsertPoints) -> PointsOperationResponse => upsert;
        delete "Delete" (DeletePoints) -> PointsOperationResponse => delete_points;
        get "Get" (GetPoints) -> GetResponse => get_points;
        scroll "Scroll" (ScrollPoints) -> ScrollResponse => scroll;
        count "Count" (CountPoints) -> CountResponse => count;
        search "Search" (SearchPoints) -> SearchResponse => search;
        query "Query" (QueryPoints) -> QueryResponse => query;
    }
    unimplemented {
        update_vectors "UpdateVectors" (UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors "DeleteVectors" (DeletePointVectors) -> PointsOperationResponse;
        set_payload "SetPayload" (SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload "OverwritePayload" (SetPayloadPoints) -> PointsOperationResponse;
        delete_payload "DeletePayload" (DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload "ClearPayload" (ClearPayloadPoints) -> PointsOperationResponse;
        create_field_index "CreateFieldIndex" (CreateFieldIndexCollection)
            -> PointsOperationResponse;
        delete_field_index "DeleteFieldIndex" (DeleteFieldIndexCollection)
            -> PointsOperationResponse;
        create_vector_name "CreateVectorName" (CreateVectorNameRequest)
            -> PointsOperationResponse;
        delete_vector_name "DeleteVectorName" (DeleteVectorNameRequest)
            -> PointsOperationResponse;
        search_batch "SearchBatch" (SearchBatchPoints) -> SearchBatchResponse;
        search_groups "SearchGroups" (SearchPointGroups) -> SearchGroupsResponse;
        recommend "Recommend" (RecommendPoints) -> RecommendResponse;
        recommend_batch "RecommendBatch" (RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups "RecommendGroups" (RecommendPointGroups) -> RecommendGroupsResponse;
        discover "Discover" (DiscoverPoints) -> DiscoverResponse;
        discover_batch "DiscoverBatch" (DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch "UpdateBatch" (UpdateBatchPoints) -> UpdateBatchResponse;
        query_batch "QueryBatch" (QueryBatchPoints) -> QueryBatchResponse;
        query_groups "QueryGroups" (QueryPointGroups) -> QueryGroupsResponse;
        facet "Facet" (FacetCounts) -> FacetResponse;
        search_matrix_pairs "SearchMatrixPairs" (SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets "SearchMatrixOffsets" (SearchMatrixPoints)
            -> SearchMatrixOffsetsResponse;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_client::Qdrant;
    use qdrant_client::qdrant::{
        CountPointsBuilder, CreateCollectionBuilder, GetPointsBuilder, QueryPointsBuilder,
        ScrollPointsBuilder, SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
    };
    use qdrant_client::{Payload, QdrantError};

    const COLL: &str = "chunks";

    fn client(fake: &FakeQdrant) -> Qdrant {
        Qdrant::from_url(&fake.url())
            .skip_compatibility_check()
            .build()
            .expect("client builds")
    }

    fn payload(text: &str) -> Payload {
        Payload::from([("text", Value::from(text))])
    }

    fn point(id: u64, vector: Vec<f32>, text: &str) -> PointStruct {
        PointStruct::new(id, vector, payload(text))
    }

    fn status_of(err: QdrantError) -> Status {
        match err {
            QdrantError::ResponseError { status } => status,
            other => panic!("expected a gRPC status error, got {other:?}"),
        }
    }

    fn id_num(id: Option<&PointId>) -> u64 {
        match id.and_then(|id| id.point_id_options.as_ref()) {
            Some(point_id::PointIdOptions::Num(n)) => *n,
            other => panic!("expected a numeric id, got {other:?}"),
        }
    }

    fn text_of(payload: &HashMap<String, Value>) -> &str {
        payload
            .get("text")
            .and_then(Value::as_str)
            .map(String::as_str)
            .expect("payload has a text field")
    }

    async fn create(client: &Qdrant, dim: u64) {
        client
            .create_collection(
                CreateCollectionBuilder::new(COLL)
                    .vectors_config(VectorParamsBuilder::new(dim, Distance::Cosine)),
            )
            .await
            .expect("create collection");
    }

    /// Four points in 4 dimensions; the query [1, 0, 0, 0] ranks them 1, 2, 3, 4.
    async fn seed(client: &Qdrant) {
        create(client, 4).await;
        client
            .upsert_points(
                UpsertPointsBuilder::new(
                    COLL,
                    vec![
                        point(1, vec![1.0, 0.0, 0.0, 0.0], "one"),
                        point(3, vec![0.0, 1.0, 0.0, 0.0], "three"),
                    ],
                )
                .wait(true),
            )
            .await
            .expect("upsert batch 1");
        client
            .upsert_points(
                UpsertPointsBuilder::new(
                    COLL,
                    vec![
                        // Not normalised on purpose: cosine must normalise.
                        point(2, vec![10.0, 5.0, 0.0, 0.0], "two"),
                        point(4, vec![-1.0, 0.0, 0.0, 0.0], "four"),
                    ],
                )
                .wait(true),
            )
            .await
            .expect("upsert batch 2");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn health_check_and_compatibility_check_work() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        let reply = client.health_check().await.expect("health check");
        assert_eq!(reply.title, "qdrant - vector search engine");
        assert_eq!(reply.version, QDRANT_VERSION);
        // A client that does run the compatibility check also builds.
        Qdrant::from_url(&fake.url())
            .build()
            .expect("client with check builds");
        assert_eq!(
            fake.calls().first().map(String::as_str),
            Some("Qdrant/HealthCheck")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn create_exists_get_list_delete_collection() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        assert!(!client.collection_exists(COLL).await.expect("exists"));
        create(&client, 384).await;
        assert!(client.collection_exists(COLL).await.expect("exists"));
        assert_eq!(fake.collection_dimension(COLL), Some(384));
        assert_eq!(fake.points_count(COLL), Some(0));

        let info = client
            .collection_info(COLL)
            .await
            .expect("collection info")
            .result
            .expect("info has a result");
        assert_eq!(info.status, CollectionStatus::Green as i32);
        assert_eq!(info.points_count, Some(0));
        let vectors = info
            .config
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        match vectors {
            Some(vectors_config::Config::Params(params)) => {
                assert_eq!(params.size, 384);
                assert_eq!(params.distance, Distance::Cosine as i32);
            }
            other => panic!("expected unnamed vector params, got {other:?}"),
        }

        let again = client
            .create_collection(
                CreateCollectionBuilder::new(COLL)
                    .vectors_config(VectorParamsBuilder::new(384, Distance::Cosine)),
            )
            .await
            .expect_err("creating twice fails");
        assert_eq!(status_of(again).code(), tonic::Code::AlreadyExists);

        let names: Vec<String> = client
            .list_collections()
            .await
            .expect("list")
            .collections
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec![COLL.to_owned()]);

        let missing = status_of(
            client
                .collection_info("nope")
                .await
                .expect_err("missing collection"),
        );
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert_eq!(
            missing.message(),
            "Not found: Collection `nope` doesn't exist!"
        );

        assert!(client.delete_collection(COLL).await.expect("delete").result);
        assert!(!client.collection_exists(COLL).await.expect("exists"));
        assert_eq!(fake.collection_dimension(COLL), None);

        assert_eq!(
            fake.calls(),
            [
                "Collections/CollectionExists",
                "Collections/Create",
                "Collections/CollectionExists",
                "Collections/Get",
                "Collections/Create",
                "Collections/List",
                "Collections/Get",
                "Collections/Delete",
                "Collections/CollectionExists",
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn upsert_count_and_idempotent_upsert() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        seed(&client).await;
        assert_eq!(fake.upsert_batches(), 2);
        assert_eq!(fake.points_count(COLL), Some(4));
        let count = client
            .count(CountPointsBuilder::new(COLL).exact(true))
            .await
            .expect("count")
            .result
            .expect("count result")
            .count;
        assert_eq!(count, 4);

        // Same ids again, new payload and vector: replaced, not added.
        let response = client
            .upsert_points(
                UpsertPointsBuilder::new(
                    COLL,
                    vec![
                        point(1, vec![0.0, 0.0, 1.0, 0.0], "one v2"),
                        point(3, vec![0.0, 1.0, 0.0, 0.0], "three"),
                    ],
                )
                .wait(true),
            )
            .await
            .expect("re-upsert");
        assert_eq!(
            response.result.map(|r| r.status),
            Some(UpdateStatus::Completed as i32)
        );
        assert_eq!(fake.upsert_batches(), 3);
        assert_eq!(fake.points_count(COLL), Some(4));

        let got = client
            .get_points(GetPointsBuilder::new(COLL, vec![1.into(), 99.into()]).with_payload(true))
            .await
            .expect("get")
            .result;
        assert_eq!(got.len(), 1, "unknown ids are skipped");
        assert_eq!(id_num(got[0].id.as_ref()), 1);
        assert_eq!(text_of(&got[0].payload), "one v2");

        let scrolled = client
            .scroll(ScrollPointsBuilder::new(COLL).limit(3).with_payload(true))
            .await
            .expect("scroll");
        let ids: Vec<u64> = scrolled
            .result
            .iter()
            .map(|p| id_num(p.id.as_ref()))
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(text_of(&scrolled.result[1].payload), "two");
        assert_eq!(id_num(scrolled.next_page_offset.as_ref()), 4);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn uuid_ids_and_legacy_vector_encoding() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        create(&client, 2).await;
        let uuid = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26";
        #[allow(deprecated)] // the pre-1.16 wire encoding: `Vector { data }`
        let legacy = qdrant_client::qdrant::Vector {
            data: vec![0.0, 1.0],
            ..Default::default()
        };
        let points = vec![
            PointStruct::new(uuid.to_owned(), vec![1.0, 0.0], payload("by uuid")),
            PointStruct::new(7, legacy, payload("legacy")),
        ];
        client
            .upsert_points(UpsertPointsBuilder::new(COLL, points))
            .await
            .expect("upsert");
        assert_eq!(fake.points_count(COLL), Some(2));
        let hits = client
            .query(
                QueryPointsBuilder::new(COLL)
                    .query(vec![0.0, 2.0])
                    .limit(2)
                    .with_payload(true),
            )
            .await
            .expect("query")
            .result;
        assert_eq!(text_of(&hits[0].payload), "legacy");
        assert_eq!(text_of(&hits[1].payload), "by uuid");
        assert_eq!(
            hits[1]
                .id
                .as_ref()
                .and_then(|id| id.point_id_options.clone()),
            Some(point_id::PointIdOptions::Uuid(uuid.to_ascii_lowercase()))
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn query_returns_top_k_by_cosine_with_payload() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        seed(&client).await;
        let response = client
            .query(
                QueryPointsBuilder::new(COLL)
                    .query(vec![1.0, 0.0, 0.0, 0.0])
                    .limit(3)
                    .with_payload(true),
            )
            .await
            .expect("query");
        assert!(response.time > 0.0);
        let hits = response.result;
        let ids: Vec<u64> = hits.iter().map(|p| id_num(p.id.as_ref())).collect();
        assert_eq!(ids, [1, 2, 3]);
        let texts: Vec<&str> = hits.iter().map(|p| text_of(&p.payload)).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
        assert!((hits[1].score - 10.0 / 125f32.sqrt()).abs() < 1e-6);
        assert!(hits[2].score.abs() < 1e-6);

        // Without with_payload, Qdrant returns no payload.
        let bare = client
            .query(
                QueryPointsBuilder::new(COLL)
                    .query(vec![0.0, 1.0, 0.0, 0.0])
                    .limit(1),
            )
            .await
            .expect("query")
            .result;
        assert_eq!(id_num(bare[0].id.as_ref()), 3);
        assert!(bare[0].payload.is_empty());
        assert_eq!(
            fake.calls().iter().filter(|c| *c == "Points/Query").count(),
            2
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn search_points_returns_top_k_by_cosine_with_payload() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        seed(&client).await;
        let hits = client
            .search_points(
                SearchPointsBuilder::new(COLL, vec![-1.0, 0.0, 0.0, 0.0], 2).with_payload(true),
            )
            .await
            .expect("search")
            .result;
        let ids: Vec<u64> = hits.iter().map(|p| id_num(p.id.as_ref())).collect();
        assert_eq!(ids, [4, 3]);
        assert_eq!(text_of(&hits[0].payload), "four");
        assert!(hits[0].score > hits[1].score);
        assert_eq!(
            fake.calls().last().map(String::as_str),
            Some("Points/Search")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn dimension_mismatch_is_rejected() {
        let fake = FakeQdrant::start();
        fake.create_collection(COLL, 4);
        let client = client(&fake);
        let err = client
            .upsert_points(UpsertPointsBuilder::new(
                COLL,
                vec![
                    point(1, vec![1.0, 0.0, 0.0, 0.0], "ok"),
                    point(2, vec![1.0, 0.0, 0.0], "too short"),
                ],
            ))
            .await
            .expect_err("wrong dimension is rejected");
        let status = status_of(err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "Wrong input: Vector dimension error: expected dim: 4, got 3"
        );
        assert_eq!(
            fake.points_count(COLL),
            Some(0),
            "the batch is all-or-nothing"
        );
        assert_eq!(fake.upsert_batches(), 0);

        let err = client
            .query(QueryPointsBuilder::new(COLL).query(vec![1.0, 0.0]).limit(1))
            .await
            .expect_err("wrong query dimension is rejected");
        assert_eq!(status_of(err).code(), tonic::Code::InvalidArgument);

        let err = client
            .upsert_points(UpsertPointsBuilder::new(
                "missing",
                vec![point(1, vec![1.0, 0.0, 0.0, 0.0], "x")],
            ))
            .await
            .expect_err("missing collection");
        assert_eq!(status_of(err).code(), tonic::Code::NotFound);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unimplemented_methods_say_so() {
        let fake = FakeQdrant::start();
        let client = client(&fake);
        let err = client
            .list_aliases()
            .await
            .expect_err("aliases are not implemented");
        assert_eq!(status_of(err).code(), tonic::Code::Unimplemented);
        assert_eq!(fake.calls(), ["Collections/ListAliases"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stop_fails_calls_and_restart_serves_the_same_data() {
        let mut fake = FakeQdrant::start();
        let addr = fake.addr();
        let client = client(&fake);
        seed(&client).await;

        fake.stop();
        // Nothing listens any more.
        let refused = std::net::TcpStream::connect(addr);
        assert!(refused.is_err(), "listener must be closed after stop");
        let err = client
            .query(
                QueryPointsBuilder::new(COLL)
                    .query(vec![1.0, 0.0, 0.0, 0.0])
                    .limit(1),
            )
            .await
            .expect_err("query fails while Qdrant is down");
        eprintln!("query while stopped: {err}");
        client
            .collection_exists(COLL)
            .await
            .expect_err("collection call fails while Qdrant is down");
        fake.stop(); // idempotent

        fake.restart();
        assert_eq!(fake.addr(), addr);
        // The same client (same channel pool) works again.
        let hits = client
            .query(
                QueryPointsBuilder::new(COLL)
                    .query(vec![1.0, 0.0, 0.0, 0.0])
                    .limit(1)
                    .with_payload(true),
            )
            .await
            .expect("query after restart")
            .result;
        assert_eq!(text_of(&hits[0].payload), "one");
        assert!(
            client
                .collection_exists(COLL)
                .await
                .expect("exists after restart")
        );
        assert_eq!(fake.points_count(COLL), Some(4));
    }

    #[test]
    fn works_from_a_plain_test_and_survives_restarts() {
        let mut fake = FakeQdrant::start();
        fake.create_collection(COLL, 3);
        for _ in 0..3 {
            fake.stop();
            fake.restart();
        }
        assert_eq!(fake.collection_dimension(COLL), Some(3));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let exists = runtime.block_on(async { client(&fake).collection_exists(COLL).await });
        assert!(exists.expect("exists"));
    }

    #[test]
    fn uuids_are_canonicalised() {
        assert_eq!(
            canonical_uuid("5C56C79369F34FBF87E6C4BF54C28C26").as_deref(),
            Some("5c56c793-69f3-4fbf-87e6-c4bf54c28c26")
        );
        assert_eq!(canonical_uuid("not-a-uuid"), None);
        assert_eq!(canonical_uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c2"), None);
    }
}
