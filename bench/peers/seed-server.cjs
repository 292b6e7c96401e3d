// The seed document's server.js (its full listing, "完整的代码"), reproduced for benchmarking
// so signalbox is compared with the server its protocol comes from. Kept as written, quirks
// included: it greets with "Hello world" (not JSON), logs every message with console.log,
// sends answers and candidates without `name`, and throws (ending the process) when `leave`
// names an unknown user or a closing user's partner is already gone.
// Changes, each needed to run it here: the port comes from argv (the seed hard-codes 9090),
// it listens on 127.0.0.1 only, and the comment whose leading slash the listing lost
// ("/A 的连接对象设为 B") is a comment again.
var WebSocketServer = require('ws').Server;
var wss = new WebSocketServer({ port: Number(process.argv[2] || 9090), host: '127.0.0.1' });
var users = {};

wss.on('connection', function (connection) {
  console.log("User connected");

  connection.on('message', function (message) {
    var data;
    try {
      data = JSON.parse(message);
    } catch (e) {
      console.log("Invalid JSON");
      data = {};
    }

    switch (data.type) {
      case "login":
        console.log("User logged", data.name);
        if (users[data.name]) {
          sendTo(connection, { type: "login", success: false });
        } else {
          users[data.name] = connection;
          connection.name = data.name;
          sendTo(connection, { type: "login", success: true });
        }
        break;

      case "offer":
        console.log("Sending offer to: ", data.name);
        var conn = users[data.name];
        if (conn != null) {
          //A 的连接对象设为 B
          connection.otherName = data.name;
          sendTo(conn, { type: "offer", offer: data.offer, name: connection.name });
        }
        break;

      case "answer":
        console.log("Sending answer to: ", data.name);
        var conn = users[data.name];
        if (conn != null) {
          connection.otherName = data.name;
          sendTo(conn, { type: "answer", answer: data.answer });
        }
        break;

      case "candidate":
        console.log("Sending candidate to:", data.name);
        var conn = users[data.name];
        if (conn != null) {
          sendTo(conn, { type: "candidate", candidate: data.candidate });
        }
        break;

      case "leave":
        console.log("Disconnecting from", data.name);
        var conn = users[data.name];
        conn.otherName = null;
        if (conn != null) {
          sendTo(conn, { type: "leave" });
        }
        break;

      default:
        sendTo(connection, { type: "error", message: "Command not found: " + data.type });
        break;
    }
  });

  connection.on("close", function () {
    if (connection.name) {
      delete users[connection.name];
      if (connection.otherName) {
        console.log("Disconnecting from ", connection.otherName);
        var conn = users[connection.otherName];
        conn.otherName = null;
        if (conn != null) {
          sendTo(conn, { type: "leave" });
        }
      }
    }
  });

  connection.send("Hello world");
});

function sendTo(connection, message) {
  connection.send(JSON.stringify(message));
}
