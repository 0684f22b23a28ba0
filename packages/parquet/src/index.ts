export {
  createDatetimeConverter,
  createParquetEncoder,
  DEFAULT_ROW_GROUP_ROWS,
  PARQUET_CONTENT_TYPE,
  type ParquetCodec,
  type ParquetColumn,
  type ParquetColumnType,
  ParquetEncodeError,
  type ParquetEncodeErrorCode,
  type ParquetEncoder,
  type ParquetEncoderOptions,
} from './encoder.ts'
