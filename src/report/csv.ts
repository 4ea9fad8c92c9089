import type { Finding, Report } from '../analyze/model.js';

/** Columns, named as the JSON fields they come from (nested ones flattened in camelCase). */
export const CSV_COLUMNS = [
  'kind',
  'family',
  'stuckSide',
  'serverIp',
  'serverPort',
  'clientIp',
  'clientPort',
  'peerFinTime',
  'peerFinAckTime',
  'stuckSeconds',
  'connectionStartTime',
  'handshakeSeen',
  'clientBytes',
  'serverBytes',
  'reconnectAttempts',
  'stuckState',
  'peerState',
  'roleReason',
  'uncertain',
  'input',
  'peerFinFrame',
  'peerFinAckFrame',
  'firstFrame',
  'lastFrame',
  'bytesAfterPeerFin',
  'lastDataTime',
  'peerWindowClosed',
] as const;

/**
 * One row per finding (every one, not just the top), a header row, CRLF line ends and RFC 4180
 * quoting: what spreadsheets and ticket attachments expect.
 */
export function renderCsv(report: Report): string {
  return renderCsvRows([report]);
}

/** Rows of several reports (`--separate`) under one header. */
export function renderCsvRows(reports: readonly Report[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const report of reports) for (const finding of report.findings) lines.push(row(finding, report).map(quote).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function row(f: Finding, report: Report): (string | number | boolean | null)[] {
  const values: Record<(typeof CSV_COLUMNS)[number], string | number | boolean | null> = {
    kind: f.kind,
    family: f.family,
    stuckSide: f.stuckSide,
    serverIp: f.server.ip,
    serverPort: f.server.port,
    clientIp: f.client.ip,
    clientPort: f.client.port,
    peerFinTime: f.peerFinTime,
    peerFinAckTime: f.peerFinAckTime,
    stuckSeconds: f.stuckSeconds,
    connectionStartTime: f.connectionStartTime,
    handshakeSeen: f.handshakeSeen,
    clientBytes: f.clientBytes,
    serverBytes: f.serverBytes,
    reconnectAttempts: f.reconnectAttempts,
    stuckState: f.stuckState,
    peerState: f.peerState,
    roleReason: f.roleReason,
    uncertain: f.uncertain,
    input: report.inputs[f.evidence.peerFin.input]?.path ?? String(f.evidence.peerFin.input),
    peerFinFrame: f.evidence.peerFin.frame,
    peerFinAckFrame: f.evidence.peerFinAck.frame,
    firstFrame: f.evidence.firstPacket.frame,
    lastFrame: f.evidence.lastPacket.frame,
    bytesAfterPeerFin: f.bytesAfterPeerFin,
    lastDataTime: f.lastDataTime,
    peerWindowClosed: f.peerWindowClosed,
  };
  return CSV_COLUMNS.map((column) => values[column]);
}

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. Null is empty. */
export function quote(value: string | number | boolean | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Parses RFC 4180 CSV (for tests and tools that read the report back). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
