import com.codahale.metrics.MetricRegistry;
import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.pinterest.memq.client.commons.MemqLogMessageIterator;
import com.pinterest.memq.client.commons.serde.ByteArrayDeserializer;
import com.pinterest.memq.commons.BatchHeader;
import com.pinterest.memq.commons.MemqLogMessage;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Decodes one MemQ object with the reference client's own classes and prints what they see as JSON lines:
 * the index entries (BatchHeader), then every record (MemqLogMessageIterator), then a summary.
 * Usage: ReadObject OBJECT_FILE NOTIFICATION_JSON_FILE
 */
public class ReadObject {
  private static final Gson GSON = new Gson();

  private static String b64(byte[] bytes) {
    return bytes == null ? null : Base64.getEncoder().encodeToString(bytes);
  }

  public static void main(String[] args) throws Exception {
    // Header names are decoded with the JVM's default charset (run with -Dfile.encoding=UTF-8); print UTF-8.
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    byte[] object = Files.readAllBytes(Paths.get(args[0]));
    String text = new String(Files.readAllBytes(Paths.get(args[1])), StandardCharsets.UTF_8);
    @SuppressWarnings("deprecation")
    JsonObject notification = new JsonParser().parse(text).getAsJsonObject();

    BatchHeader index = new BatchHeader(new DataInputStream(new ByteArrayInputStream(object)));
    for (Map.Entry<Integer, BatchHeader.IndexEntry> entry : index.getMessageIndex().entrySet()) {
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("entry", entry.getKey());
      line.put("offset", entry.getValue().getOffset());
      line.put("size", entry.getValue().getSize());
      out.println(GSON.toJson(line));
    }

    MemqLogMessageIterator<byte[], byte[]> records = new MemqLogMessageIterator<>("interop", "interop",
        new DataInputStream(new ByteArrayInputStream(object)), notification, new ByteArrayDeserializer(),
        new ByteArrayDeserializer(), new MetricRegistry(), false, null);
    int count = 0;
    while (records.hasNext()) {
      MemqLogMessage<byte[], byte[]> record = records.next();
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("index", record.getMessageOffsetInBatch());
      line.put("key", b64(record.getKey()));
      line.put("value", b64(record.getValue()));
      Map<String, String> headers = new TreeMap<>();
      if (record.getHeaders() != null) {
        for (Map.Entry<String, byte[]> header : record.getHeaders().entrySet()) {
          headers.put(header.getKey(), b64(header.getValue()));
        }
      }
      line.put("headers", headers);
      line.put("timestamp_ms", record.getWriteTimestamp());
      // Printed at once: the reader later XORs the ids of a message into its first id's array.
      line.put("message_id", record.getMessageId() == null ? null : b64(record.getMessageId().toByteArray()));
      line.put("end_of_batch", record.isEndOfBatch());
      out.println(GSON.toJson(line));
      count++;
    }
    records.close();
    out.println("{\"records\":" + count + "}");
  }
}
