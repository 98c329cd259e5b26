// Generates a realistic set of 5 WAL databases (text bodies, indexes, foreign keys) of about
// `--mb` megabytes in total, deterministic for a seed. Usage: tsx bench/generate.ts <dir> [--mb 600]
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { formatBytes } from '../src/core/size-format.js';

/** Small fast deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text that compresses like prose: a Zipf-like vocabulary of made-up words, sentences, numbers. */
function textMaker(seed: number) {
  const r = rng(seed);
  const syllables = ['ka', 'to', 'ri', 'men', 'sa', 'lo', 'ven', 'da', 'ti', 'ro', 'qu', 'el', 'an', 'or', 'is', 'um', 'pre', 'con', 'tra', 'ble', 'ing', 'ed', 'st', 'ph', 'th'];
  const vocab: string[] = [];
  for (let i = 0; i < 6000; i++) {
    const n = 1 + Math.floor(r() * 3.2);
    let w = '';
    for (let k = 0; k < n; k++) w += syllables[Math.floor(r() * syllables.length)];
    vocab.push(w);
  }
  const word = () => vocab[Math.floor(vocab.length * r() ** 2.2)]!;
  const sentence = () => {
    const n = 5 + Math.floor(r() * 14);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(r() < 0.04 ? String(Math.floor(r() * 10000)) : word());
    const s = words.join(' ');
    return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
  };
  const paragraph = (bytes: number) => {
    let out = '';
    while (out.length < bytes) out += `${sentence()} `;
    return out.slice(0, bytes);
  };
  return { r, word, sentence, paragraph };
}

export interface GeneratedSet {
  dir: string;
  files: string[];
  bytes: number;
}

export function generateSet(dir: string, totalMb: number, seed = 42): GeneratedSet {
  fs.mkdirSync(dir, { recursive: true });
  const t = textMaker(seed);
  const share = { tasks: 0.2, messages: 0.35, entities: 0.2, events: 0.15, projects: 0.1 };
  const target = (k: keyof typeof share) => totalMb * 1024 * 1024 * share[k];
  const files: string[] = [];
  const open = (name: string) => {
    const file = path.join(dir, `${name}.db`);
    fs.rmSync(file, { force: true });
    files.push(file);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.pragma('wal_autocheckpoint = 100000');
    return db;
  };
  const fill = (db: Database.Database, goal: number, batch: (i: number) => void) => {
    // Large transactions until the main file reaches its share; the last ones stay in the WAL.
    let i = 0;
    const tx = db.transaction((n: number) => {
      for (let k = 0; k < n; k++) batch(i++);
    });
    const size = () => Number(db.pragma('page_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
    while (size() < goal) tx(2000);
  };

  const tasks = open('tasks');
  tasks.exec(`CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), title TEXT NOT NULL, notes TEXT, state TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE task_history (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id), state TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX tasks_by_state ON tasks(state); CREATE INDEX history_by_task ON task_history(task_id);`);
  const addProject = tasks.prepare('INSERT INTO projects(name) VALUES (?)');
  for (let p = 0; p < 200; p++) addProject.run(t.sentence());
  const addTask = tasks.prepare('INSERT INTO tasks(project_id, title, notes, state, created_at) VALUES (?, ?, ?, ?, ?)');
  const addHist = tasks.prepare('INSERT INTO task_history(task_id, state, at) VALUES (?, ?, ?)');
  const states = ['open', 'doing', 'blocked', 'done', 'archived'];
  fill(tasks, target('tasks'), (i) => {
    const id = Number(addTask.run(1 + (i % 200), t.sentence(), t.paragraph(300 + Math.floor(t.r() * 900)), states[i % 5], new Date(1.7e12 + i * 60_000).toISOString()).lastInsertRowid);
    addHist.run(id, states[(i + 1) % 5], new Date(1.7e12 + i * 61_000).toISOString());
  });
  tasks.close();

  const messages = open('messages');
  messages.exec(`CREATE TABLE threads (id INTEGER PRIMARY KEY, subject TEXT NOT NULL);
    CREATE TABLE messages (id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL REFERENCES threads(id), author TEXT NOT NULL, body TEXT NOT NULL, sent_at TEXT NOT NULL);
    CREATE INDEX messages_by_thread ON messages(thread_id, sent_at);`);
  const addThread = messages.prepare('INSERT INTO threads(subject) VALUES (?)');
  for (let th = 0; th < 5000; th++) addThread.run(t.sentence());
  const addMsg = messages.prepare('INSERT INTO messages(thread_id, author, body, sent_at) VALUES (?, ?, ?, ?)');
  fill(messages, target('messages'), (i) => addMsg.run(1 + (i % 5000), t.word(), t.paragraph(200 + Math.floor(t.r() * 2500)), new Date(1.7e12 + i * 1000).toISOString()));
  messages.close();

  const entities = open('entities');
  entities.exec('CREATE TABLE entities (id TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL) WITHOUT ROWID; CREATE INDEX entities_by_kind ON entities(kind);');
  const addEntity = entities.prepare('INSERT INTO entities VALUES (?, ?, ?)');
  fill(entities, target('entities'), (i) =>
    addEntity.run(`e${i}`, ['person', 'place', 'org', 'topic'][i % 4]!, JSON.stringify({ name: t.sentence(), tags: [t.word(), t.word(), t.word()], score: t.r(), about: t.paragraph(400) })),
  );
  entities.close();

  const events = open('events');
  events.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL); CREATE INDEX events_by_at ON events(at);');
  const addEvent = events.prepare('INSERT INTO events(at, kind, payload) VALUES (?, ?, ?)');
  fill(events, target('events'), (i) => addEvent.run(1.7e12 + i * 250, t.word(), `{"n":${i},"w":"${t.word()}","v":${Math.floor(t.r() * 1e6)}}`));
  events.close();

  const projects = open('projects');
  projects.exec(`CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL);
    CREATE TABLE docs (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), title TEXT NOT NULL, body TEXT NOT NULL);`);
  const addP = projects.prepare('INSERT INTO projects(name, description) VALUES (?, ?)');
  for (let p = 0; p < 500; p++) addP.run(t.sentence(), t.paragraph(2000));
  const addDoc = projects.prepare('INSERT INTO docs(project_id, title, body) VALUES (?, ?, ?)');
  fill(projects, target('projects'), (i) => addDoc.run(1 + (i % 500), t.sentence(), t.paragraph(4000 + Math.floor(t.r() * 8000))));
  projects.close();

  const bytes = files.reduce((n, f) => n + fs.statSync(f).size + (fs.existsSync(`${f}-wal`) ? fs.statSync(`${f}-wal`).size : 0), 0);
  return { dir, files, bytes };
}

if (process.argv[1]?.endsWith('generate.ts')) {
  const dir = process.argv[2] ?? 'bench/out/set';
  const mbIndex = process.argv.indexOf('--mb');
  const mb = mbIndex > 0 ? Number(process.argv[mbIndex + 1]) : 600;
  const started = Date.now();
  const set = generateSet(dir, mb);
  process.stdout.write(`generated ${set.files.length} databases, ${formatBytes(set.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
