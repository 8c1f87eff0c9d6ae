/**
 * The metadata.csv that sits beside an evaluated folder of class subfolders: where it is looked for, a strict parse
 * (every error names the file and the line), and the match of its rows to the evaluated images by relative path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DatasetError } from '../data/errors.ts';

export const METADATA_FILE = 'metadata.csv';
/** Looked in for the source column when metadata.csv does not have it (COVID-CT keeps `source_group` there). */
export const PROVENANCE_FILE = 'provenance.csv';
export const PATIENT_COLUMN = 'patient_id';

/** A malformed metadata file; the message starts with `file:line:`. */
export class MetadataError extends DatasetError {
  override name = 'MetadataError';
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

export interface CsvRow {
  /** 1-based line on which the row starts. */
  line: number;
  values: Record<string, string>;
}

export interface CsvTable {
  file: string;
  /** 1-based line of the header. */
  headerLine: number;
  columns: string[];
  rows: CsvRow[];
}

/**
 * RFC 4180 CSV (quoted fields with doubled quotes, LF or CRLF, a UTF-8 BOM ignored), refusing what the lenient
 * reader of src/data would silently pad or drop: an unterminated quote, text after a closing quote, rows with more or
 * fewer fields than the header, an empty or duplicate header name. Blank lines are skipped.
 */
export function parseCsvStrict(text: string, file: string): CsvTable {
  const records: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quotedFrom = 0; // line of the opening quote while inside a quoted field, else 0
  let afterQuote = false; // just closed a quoted field: only a separator or a line end may follow
  const endRecord = () => {
    cells.push(field);
    if (!(cells.length === 1 && cells[0] === '' && !afterQuote)) records.push({ line: recordLine, cells });
    cells = [];
    field = '';
    afterQuote = false;
  };
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i]!;
    if (quotedFrom) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quotedFrom = 0;
        afterQuote = true;
      } else {
        if (ch === '\n' || (ch === '\r' && text[i + 1] !== '\n')) line++;
        field += ch;
      }
      continue;
    }
    if (ch === ',') {
      cells.push(field);
      field = '';
      afterQuote = false;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else if (afterQuote) {
      throw new MetadataError(file, line, `unexpected ${JSON.stringify(ch)} after a closing quote (a quote inside a field is written "")`);
    } else if (ch === '"' && field === '') {
      quotedFrom = line;
    } else field += ch;
  }
  if (quotedFrom) throw new MetadataError(file, quotedFrom, 'unterminated quoted field (a quote opened here is never closed)');
  if (field !== '' || cells.length > 0 || afterQuote) endRecord();

  const [header, ...body] = records;
  if (!header) throw new MetadataError(file, 1, "empty file: expected a header line such as 'path,class,patient_id'");
  const columns = header.cells.map((c) => c.trim());
  const blank = columns.findIndex((c) => c === '');
  if (blank >= 0) throw new MetadataError(file, header.line, `header: column ${blank + 1} has no name`);
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new MetadataError(file, header.line, `header: column '${c}' appears twice`);
    seen.add(c);
  }
  const rows = body.map(({ line: at, cells: row }): CsvRow => {
    if (row.length !== columns.length) {
      throw new MetadataError(file, at, `${row.length} field${row.length === 1 ? '' : 's'}, but the header (line ${header.line}) has ${columns.length}: ${columns.join(',')}`);
    }
    return { line: at, values: Object.fromEntries(columns.map((c, j) => [c, row[j]!])) };
  });
  return { file, headerLine: header.line, columns, rows };
}

/** A table keyed by its `path` column (normalised: forward slashes, no leading `./`). */
export interface PathTable extends CsvTable {
  /** Folder the paths are relative to: the file's own folder. */
  dir: string;
  byPath: Map<string, CsvRow>;
}

export function normalisePath(path: string): string {
  return path.trim().replace(/\\/g, '/').replace(/^(\.\/)+/, '');
}

/** Reads and strictly parses a csv with a `path` column; duplicate or empty paths are errors naming their lines. */
export function readPathTable(file: string): PathTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DatasetError(`${file}: cannot read: ${(error as Error).message}`);
  }
  const table = parseCsvStrict(text, file);
  if (!table.columns.includes('path')) {
    throw new MetadataError(file, table.headerLine, `header has no 'path' column (columns: ${table.columns.join(', ')}); is the header line missing?`);
  }
  const byPath = new Map<string, CsvRow>();
  for (const row of table.rows) {
    const key = normalisePath(row.values.path!);
    if (key === '') throw new MetadataError(file, row.line, 'empty path');
    const earlier = byPath.get(key);
    if (earlier) throw new MetadataError(file, row.line, `path ${key} already on line ${earlier.line}`);
    byPath.set(key, row);
  }
  return { ...table, dir: dirname(resolve(file)), byPath };
}

function inside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Folders searched for metadata.csv, nearest first: the evaluated folder and its parents up to `root` (the data
 * root) when the folder lies under it; otherwise the folder and its parent only, so a stray csv higher up is never
 * picked. The default COVID-CT test folder finds the csv at the dataset root (`covid-ct/metadata.csv`).
 */
export function metadataSearchPath(folder: string, root?: string): string[] {
  const start = resolve(folder);
  const top = root && inside(resolve(root), start) ? resolve(root) : dirname(start);
  const dirs: string[] = [];
  for (let dir = start; ; dir = dirname(dir)) {
    dirs.push(dir);
    if (dir === top || dirname(dir) === dir) break;
  }
  return dirs;
}

export function findMetadata(folder: string, root?: string): { file: string | null; searched: string[] } {
  const searched = metadataSearchPath(folder, root);
  const dir = searched.find((d) => existsSync(join(d, METADATA_FILE)));
  return { file: dir ? join(dir, METADATA_FILE) : null, searched };
}

/**
 * The row of an image: its path relative to the csv's folder, else relative to the evaluated folder (a csv whose
 * paths start at the class folders), else its absolute path.
 */
export function rowOf(table: PathTable, imagePath: string, folder: string): CsvRow | undefined {
  const absolute = resolve(imagePath);
  const candidates = [relative(table.dir, absolute), relative(resolve(folder), absolute)].filter((r) => !r.startsWith('..') && !isAbsolute(r));
  for (const candidate of [...candidates.map((c) => c.split(sep).join('/')), absolute.split(sep).join('/')]) {
    const row = table.byPath.get(candidate);
    if (row) return row;
  }
  return undefined;
}
