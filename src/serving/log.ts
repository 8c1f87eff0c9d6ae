/**
 * The prediction log: one SQLite row per answered prediction request (better-sqlite3, synchronous: an insert
 * is a few microseconds in WAL mode, so it does not need to leave the event loop).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export interface LogEntry {
  /** ISO 8601 time the prediction was answered. */
  time: string;
  inputSha256: string;
  /** image, dicom, dicom-series or nifti. */
  inputKind: string;
  modelId: string;
  /** P(COVID) of the image, or the study score of a volume. */
  probability: number;
  label: string;
  latencyMs: number;
}

export interface LoggedPrediction extends LogEntry {
  id: number;
}

interface Row {
  id: number;
  time: string;
  input_sha256: string;
  input_kind: string;
  model_id: string;
  probability: number;
  label: string;
  latency_ms: number;
}

export class PredictionLog {
  private readonly db: Database.Database;
  private readonly insertStatement: Database.Statement;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS predictions (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      time TEXT NOT NULL,
      input_sha256 TEXT NOT NULL,
      input_kind TEXT NOT NULL,
      model_id TEXT NOT NULL,
      probability REAL NOT NULL,
      label TEXT NOT NULL,
      latency_ms REAL NOT NULL
    )`);
    this.insertStatement = this.db.prepare(
      'INSERT INTO predictions (time, input_sha256, input_kind, model_id, probability, label, latency_ms) VALUES (@time, @inputSha256, @inputKind, @modelId, @probability, @label, @latencyMs)',
    );
  }

  add(entry: LogEntry): number {
    return Number(this.insertStatement.run(entry).lastInsertRowid);
  }

  /** The newest `limit` predictions, newest first. */
  recent(limit: number): LoggedPrediction[] {
    const rows = this.db.prepare('SELECT * FROM predictions ORDER BY id DESC LIMIT ?').all(limit) as Row[];
    return rows.map((r) => ({ id: r.id, time: r.time, inputSha256: r.input_sha256, inputKind: r.input_kind, modelId: r.model_id, probability: r.probability, label: r.label, latencyMs: r.latency_ms }));
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
