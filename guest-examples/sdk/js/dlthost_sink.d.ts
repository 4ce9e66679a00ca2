// Types of dlthost_sink.js (contract dlthost:destination@0.1.0).

export const CONTRACT: string;

export type ConfigType = "string" | "integer" | "float" | "boolean";
export type ConfigValue =
  | { tag: "string"; val: string }
  | { tag: "integer"; val: bigint }
  | { tag: "float"; val: number }
  | { tag: "boolean"; val: boolean };

export interface ConfigKey {
  name: string;
  valueType: ConfigType;
  secret: boolean;
  required: boolean;
  default?: ConfigValue;
}

export interface SinkSpec {
  name: string;
  batchSize?: number;
  loaderFileFormat?: "jsonl" | "parquet";
  namingConvention?: string;
  maxNestingLevel?: number;
  skipDltColumnsAndTables?: boolean;
  maxBatchBytes?: bigint;
  itemFormat: "rows" | "arrow-ipc";
  config: ConfigKey[];
}

export interface SpecOptions {
  /** Lower snake_case: the config section `[destination.<name>]`. */
  name: string;
  /** Rows per call (0: whole job files, which JavaScript sinks cannot read). */
  batchSize?: number;
  fileFormat?: "jsonl" | "parquet";
  namingConvention?: "direct" | "snake_case";
  maxNestingLevel?: number;
  skipDltColumnsAndTables?: boolean;
  maxBatchBytes?: number | bigint;
  arrowIpc?: boolean;
  config?: ConfigKey[];
}

export type DataType = "text" | "double" | "bool" | "timestamp" | "bigint" | "binary" | "json" | "decimal" | "date" | "time";

export interface Column {
  name: string;
  dataType: DataType;
  nullable: boolean;
  primaryKey: boolean;
  unique: boolean;
  rowKey: boolean;
  parentKey: boolean;
  variant: boolean;
  precision?: number;
  scale?: number;
  timezone?: boolean;
}

export interface TableSchema {
  name: string;
  parent?: string;
  writeDisposition: "append" | "replace" | "merge" | "skip";
  columns: Column[];
}

export interface BatchContext {
  loadId: string;
  jobId: string;
  batchIndex: number;
  startRow: bigint;
  rowCount: bigint;
  idempotencyKey: string;
  attempt: number;
}

export type Value =
  | { tag: "null" }
  | { tag: "bool"; val: boolean }
  | { tag: "bigint"; val: bigint }
  | { tag: "double"; val: number }
  | { tag: "text"; val: string }
  | { tag: "decimal"; val: string }
  | { tag: "timestamp"; val: bigint }
  | { tag: "date"; val: number }
  | { tag: "time"; val: bigint }
  | { tag: "binary"; val: Uint8Array }
  | { tag: "json"; val: string };

export type Items =
  | { tag: "rows"; val: Value[][] }
  | { tag: "arrow-ipc"; val: Uint8Array }
  | { tag: "file"; val: { path: string; format: "jsonl" | "parquet"; compression: "none" | "gzip"; rowCount: bigint } };

/** A row's value: timestamps, dates, times and decimals as exact strings. */
export type PlainValue = null | boolean | bigint | number | string | Uint8Array | unknown;

export type SinkError =
  | { tag: "retry"; val: { message: string; retryAfterMs?: bigint } }
  | { tag: "terminal"; val: string };

export function spec(options: SpecOptions): SinkSpec;
export function setting(
  name: string,
  defaultValue?: string | number | bigint | boolean | null,
  options?: { type?: ConfigType; required?: boolean },
): ConfigKey;
export function secret(name: string, options?: { type?: ConfigType; required?: boolean }): ConfigKey;

export function get(key: string): string | bigint | number | boolean | undefined;
export function getString(key: string): string | undefined;
export function getInteger(key: string): bigint | undefined;
export function getFloat(key: string): number | undefined;
export function getBoolean(key: string): boolean | undefined;
/** The key's value, or throws a terminal error naming where to set it. */
export function require(key: string): string | bigint | number | boolean;

/** Throw it from `load`: the host sends the batch again (after `afterMs`, if given). */
export function retry(message: string, afterMs?: number | bigint): SinkError;
/** Throw it from `load`: the batch can never be delivered. */
export function terminal(message: string): SinkError;

export function value(v: Value): PlainValue;
export function rows(table: TableSchema, items: Items): Record<string, PlainValue>[];
export function stringify(v: unknown): string;
