/*
 * Operator console (served at /operator/). Plain JavaScript, no framework, no build step, nothing
 * loaded from other hosts; the page's Content-Security-Policy forbids inline script and style.
 *
 * Everything a customer, the bot or an operator wrote is shown with textContent: it is never
 * parsed as HTML. The page keeps the CSRF token in memory only (never in storage); the session
 * itself is an HttpOnly cookie the script cannot read.
 *
 * Every text of the UI is in T below, so the console can be translated in one place.
 */
(function () {
  "use strict";

  var T = {
    title: "Операторская",
    app_loading: "Загрузка…",
    login_heading: "Вход для операторов",
    login_label: "Логин",
    password_label: "Пароль",
    login_submit: "Войти",
    login_busy: "Вход…",
    login_failed: "Неверный логин или пароль.",
    login_throttled: "Слишком много попыток. Подождите {seconds} с и попробуйте снова.",
    login_throttled_short: "Слишком много попыток. Подождите немного и попробуйте снова.",
    session_expired: "Сессия завершена. Войдите снова.",
    logout: "Выйти",
    status_online: "На линии",
    status_away: "Отошёл",
    status_hint: "Переключить статус: на линии вам назначаются новые диалоги",
    offline: "нет связи",
    offline_hint: "Нет связи с сервером, переподключаемся. Очередь обновляется раз в 15 с.",
    conversations: "Диалоги",
    queue: "Очередь",
    queue_empty: "Очередь пуста",
    mine: "Мои диалоги",
    mine_empty: "Нет активных диалогов",
    live: "С ботом",
    live_empty: "Сейчас с ботом никто не говорит",
    take_over: "Подключиться",
    claim: "Взять",
    claim_conversation: "Взять диалог",
    anonymous: "Без имени",
    waiting: "Ждёт",
    no_messages: "Сообщений нет",
    pick_conversation: "Выберите диалог в очереди или в списке «Мои диалоги».",
    loading: "Загрузка диалога…",
    transfer: "Передать",
    release: "Вернуть боту",
    close: "Завершить",
    new_messages: "Новые сообщения ↓",
    composer_label: "Ответ клиенту",
    composer_placeholder: "Ответ клиенту. Enter — отправить, Shift+Enter — новая строка",
    note_placeholder: "Внутренняя заметка: клиент её не увидит. Enter — сохранить",
    send: "Отправить",
    save_note: "Сохранить заметку",
    note_toggle: "Заметка",
    note_toggle_hint: "Отправить как внутреннюю заметку (клиент её не увидит)",
    canned_label: "Шаблоны ответов",
    attach: "📎 Файл",
    attach_hint: "Отправить клиенту файл: фото, PDF или документ, до 20 МБ",
    file_sent: "Файл отправлен клиенту.",
    file_not_sent: "Файл не отправлен.",
    file_too_large: "Файл больше 20 МБ: клиенту его не отправить.",
    file_type: "Такой файл не отправить: подойдут фото (JPG, PNG, GIF, WebP), PDF, документы Word/Excel.",
    canned_placeholder: "Шаблон…",
    locked_other: "Диалог ведёт {operator}.",
    locked_queued: "Диалог ждёт в очереди.",
    locked_bot: "Диалог ведёт бот.",
    locked_closed: "Диалог завершён.",
    note: "Заметка",
    customer: "Клиент",
    customer_unknown: "Клиент не опознан: договор не привязан к диалогу.",
    card: {
      contract: "Договор",
      holder_name: "ФИО",
      tariff: "Тариф",
      balance: "Баланс",
      next_charge_date: "Списание",
      bonus_points: "Бонусы",
      status: "Статус",
      city: "Город",
      address: "Адрес",
      pending_tariff: "Смена тарифа",
      promised_payment: "Обещанный платёж",
      suspension: "Пауза",
      services: "Услуги",
      autopay: "Автоплатёж",
      monthly_total: "В месяц",
      to_unblock: "До разблокировки",
      phone: "Телефон",
      email: "E-mail",
    },
    card_unavailable: "Биллинг не отвечает: данные договора сейчас недоступны.",
    card_values: {
      pending_tariff: "{tariff} с {effective}",
      promised_payment: "{amount} до {until} включительно",
      pause_range: "с {from} по {to}",
      pause_open: "с {from}, без даты окончания",
      autopay_on: "подключён",
      autopay_off: "не подключён",
      none: "нет",
    },
    // Account actions from the card: the same rules as the bot's; every one is previewed first.
    act: {
      heading: "Действия",
      buttons: {
        promised_payment: "Обещанный платёж",
        suspend: "Пауза…",
        resume: "Снять с паузы",
        change_tariff: "Сменить тариф…",
        cancel_tariff_change: "Отменить смену тарифа",
        service_on: "Подключить услугу…",
        service_off: "Отключить услугу…",
        autopay_off: "Отключить автоплатёж",
        unblock: "Разблокировать",
      },
      forms: {
        suspend: "Пауза: укажите даты (обе включительно)",
        change_tariff: "Новый тариф",
        service_on: "Какую услугу подключить",
        service_off: "Какую услугу отключить",
      },
      questions: {
        promised_payment: "Подключить обещанный платёж?",
        suspend: "Поставить договор на паузу?",
        resume: "Снять договор с паузы?",
        change_tariff: "Сменить тариф?",
        cancel_tariff_change: "Отменить запланированную смену тарифа?",
        service_on: "Подключить услугу?",
        service_off: "Отключить услугу?",
        autopay_off: "Отключить автоплатёж?",
        unblock: "Разблокировать договор?",
      },
      done: {
        promised_payment: "Обещанный платёж подключён.",
        suspend: "Пауза оформлена.",
        resume: "Договор снят с паузы.",
        change_tariff: "Смена тарифа оформлена.",
        cancel_tariff_change: "Смена тарифа отменена.",
        service_on: "Услуга подключена.",
        service_off: "Услуга отключена.",
        autopay_off: "Автоплатёж отключён.",
        unblock: "Договор разблокирован.",
      },
      from: "С",
      to: "По",
      choose: "Выберите…",
      preview: "Показать условия",
      confirm: "Подтвердить",
      cancel: "Отмена",
      close: "Закрыть",
      checking: "Проверяем условия…",
      applying: "Выполняем…",
      need_dates: "Укажите даты начала и окончания паузы.",
      need_choice: "Выберите вариант из списка.",
      repeat: "Это действие уже было выполнено, повторно ничего не сделано.",
      refused: "Нельзя: {text}",
      errors: {
        unavailable: "Биллинг не отвечает. Ничего не изменено, попробуйте позже.",
        bad_request: "Сервер не принял запрос: проверьте введённые данные.",
        not_found: "Договор не найден в биллинге.",
      },
      refusals: {
        promised_active: "обещанный платёж уже действует: {amount} до {until}.",
        promised_status_active: "обещанный платёж недоступен при этом статусе договора.",
        promised_status_blocked: "обещанный платёж недоступен для заблокированного договора.",
        promised_status_suspended: "договор на паузе, обещанный платёж не нужен.",
        promised_cooldown: "обещанный платёж уже брали {since}; снова можно с {again}.",
        promised_debt_too_large: "долг {debt} больше допустимого {limit}, нужна оплата.",
        promised_not_needed: "обещанный платёж не нужен, на балансе {balance}.",
        suspend_already: "договор уже на паузе или пауза запланирована.",
        suspend_blocked: "договор заблокирован, сначала нужно внести {amount}.",
        suspend_no_end: "нужна дата окончания паузы (от {min} до {max} дней).",
        suspend_in_past: "дата начала {from} уже прошла.",
        suspend_reversed: "дата окончания раньше даты начала.",
        suspend_length: "пауза на {days} дн., а можно от {min} до {max} дней.",
        suspend_funds: "за паузу нужно {fee}, на балансе {balance}.",
        resume_not_paused: "договор не на паузе.",
        tariff_unknown: "этот тариф не предлагается в городе клиента.",
        tariff_same: "клиент уже на тарифе «{tariff}».",
        tariff_blocked: "договор заблокирован, сначала нужно внести {amount}.",
        tariff_no_pending: "смена тарифа не запланирована.",
        service_unknown: "эта услуга не предлагается в городе клиента.",
        service_already_on: "услуга «{service}» уже подключена.",
        service_blocked: "договор заблокирован, сначала нужно внести {amount}.",
        service_funds: "для подключения нужно {price}, на балансе {balance}.",
        service_not_on: "услуга «{service}» не подключена.",
        autopay_already_off: "автоплатёж уже отключён.",
        notifications_unknown: "неизвестная тема или канал уведомлений.",
        notifications_unchanged: "настройки уведомлений не изменились.",
        unblock_active: "договор не заблокирован.",
        unblock_suspended: "договор на паузе, а не заблокирован.",
        unblock_funds: "для разблокировки не хватает {to_unblock}.",
        billing_refused: "биллинг отказал (код {code}).",
        unknown_contract: "договор не найден в биллинге.",
        other: "действие недоступно ({reason}).",
      },
      terms: {
        amount: "Сумма",
        until: "Действует по",
        days: "Дней",
        fee: "Плата",
        unblocks: "Разблокирует договор",
        from: "С",
        to: "По",
        resume_on: "Возобновление",
        started: "Пауза уже началась",
        tariff: "Тариф",
        current: "Текущий тариф",
        price: "Цена",
        difference: "Разница в месяц",
        effective: "С даты",
        service: "Услуга",
        period: "Оплата",
        monthly_total: "Итого в месяц",
        balance: "Баланс",
      },
      period: { month: "в месяц", once: "разово" },
      yes: "да",
      no: "нет",
      log_heading: "Журнал операций",
      log_empty: "Операций по договору пока не было.",
      by_bot: "Бот",
      op_range: "{from} – {to}",
      op_until: "по {until}",
      op_effective: "с {effective}",
      kinds: {
        promised_payment: "Обещанный платёж",
        suspend: "Пауза",
        resume: "Снятие с паузы",
        change_tariff: "Смена тарифа",
        cancel_tariff_change: "Отмена смены тарифа",
        service_on: "Подключение услуги",
        service_off: "Отключение услуги",
        autopay: "Отключение автоплатежа",
        autopay_off: "Отключение автоплатежа",
        set_notifications: "Настройка уведомлений",
        set_contact: "Смена контакта",
        unblock: "Разблокировка",
        payment: "Платёж",
      },
      status: {
        done: "выполнено",
        pending: "выполняется",
        refused: "отказ биллинга",
        failed: "не выполнено",
      },
    },
    per_month: "/мес",
    account_status: { active: "Активен", blocked: "Заблокирован", suspended: "Приостановлен" },
    history: "История обращений",
    history_empty: "Других обращений нет",
    history_messages: "сообщ.",
    transfer_heading: "Передать диалог",
    transfer_to: "Кому",
    transfer_to_department: "В отдел",
    transfer_to_operator: "Оператору",
    transfer_department: "Отдел",
    transfer_operator: "Логин оператора",
    transfer_note: "Заметка для коллеги",
    transfer_submit: "Передать",
    cancel: "Отмена",
    transferred: "Диалог передан.",
    released: "Диалог возвращён боту.",
    closed: "Диалог завершён, клиенту отправлен вопрос об оценке.",
    claimed: "Диалог ваш.",
    assigned: "Вам назначен диалог: {who}",
    not_sent: "Сообщение не отправлено, текст возвращён в поле ввода.",
    from: { customer: "Клиент", bot: "Бот", operator: "Оператор", system: "Система" },
    preview_from: { bot: "Бот: ", operator: "Оператор: ", system: "" },
    attachment: "(вложение)",
    channels: { telegram: "Telegram", vk: "VK", viber: "Viber", widget: "Сайт", rest: "REST" },
    departments: {
      billing: "Оплата и баланс",
      technical: "Техподдержка",
      sales: "Подключение и тарифы",
      general: "Общие вопросы",
    },
    states: { bot: "у бота", queued: "в очереди", operator: "у оператора", closed: "завершён" },
    // The «Заявки» view: requests people act on (leads, call-backs, visits …).
    views: { conversations: "Диалоги", requests: "Заявки", audit: "Журнал" },
    req: {
      heading: "Заявки",
      empty: "Заявок нет",
      empty_filtered: "Нет заявок с такими условиями",
      all: "Все",
      filter_kind: "Тип",
      filter_status: "Статус",
      filter_city: "Город",
      export: "Выгрузить CSV",
      number: "№ {id}",
      pick: "Выберите заявку в списке.",
      kinds: {
        connection: "Подключение",
        callback: "Обратный звонок",
        visit: "Выезд мастера",
        complaint: "Жалоба",
        termination: "Расторжение",
        feedback: "Отзыв",
      },
      statuses: { new: "Новая", in_progress: "В работе", done: "Выполнена", cancelled: "Отменена" },
      fields: {
        created_at: "Создана",
        name: "Имя",
        phone: "Телефон",
        contract: "Договор",
        city: "Город",
        address: "Адрес",
        details: "Подробности",
        attachments: "Файлы",
        assignee: "Исполнитель",
        conversation: "Диалог",
      },
      details: { when: "Когда звонить", house_status: "Дом в реестре", text: "Текст" },
      house_statuses: { connected: "подключён", planned: "подключение запланировано" },
      nobody: "не назначен",
      show_phone: "Показать телефон",
      show_phone_hint: "Номер откроется полностью; это отмечается в истории заявки",
      take: "Взять себе",
      release: "Снять исполнителя",
      open_conversation: "Открыть диалог",
      status_label: "Статус",
      comment_label: "Комментарий (клиент его не видит)",
      save: "Сохранить",
      saved: "Заявка сохранена.",
      unchanged: "Ничего не изменилось.",
      history: "История",
      history_empty: "Изменений не было",
      actions: {
        created: "создана",
        imported: "перенесена из прежней версии",
        status: "статус: {from} → {to}",
        comment: "комментарий: {to}",
        assignee: "исполнитель: {to}",
        opened: "открыт телефон",
        exported: "выгружена с телефонами",
      },
      by_bot: "бот",
      arrived: "Новая заявка: {what}",
      // A `visit` record: the technician's visit itself, moved or cancelled from here.
      visit: {
        heading: "Визит мастера",
        window: "Когда (время города)",
        problem: "Проблема",
        address: "Адрес",
        fee: "Стоимость выезда",
        free: "бесплатно",
        moved_from: "Перенесён из заявки № {id}",
        closed: "Визит уже не действует: заявка закрыта.",
        move: "Перенести…",
        cancel: "Отменить визит",
        new_window: "Новое время",
        loading_windows: "Загружаем свободное время…",
        no_windows: "Свободного времени на ближайшие две недели нет.",
        confirm_move: "Перенести",
        cancel_question: "Отменить визит мастера? Клиенту придёт сообщение об отмене.",
        confirm_cancel: "Да, отменить визит",
        back: "Не отменять",
        close_form: "Закрыть",
        moved: "Визит перенесён: {when}. Клиенту отправлено сообщение.",
        cancelled: "Визит отменён. Клиенту отправлено сообщение.",
        weekdays: ["вс", "пн", "вт", "ср", "чт", "пт", "сб"],
        months: [
          "января", "февраля", "марта", "апреля", "мая", "июня",
          "июля", "августа", "сентября", "октября", "ноября", "декабря",
        ],
        errors: {
          taken: "Это время уже заняли: все бригады на него записаны. Выберите другое.",
          past: "Это время уже началось или прошло. Выберите другое.",
          unknown: "Такого времени нет в расписании. Обновите список.",
          not_booked: "Визит уже перенесён или отменён. Заявка обновлена.",
          not_found: "Визит не найден.",
          bad_request: "Сервер не принял запрос.",
        },
      },
    },
    // The «Журнал» view (supervisors only): what operators did, from bot/handoff/audit.py.
    audit: {
      heading: "Журнал",
      filter_login: "Логин",
      login_placeholder: "все",
      filter_action: "Действия",
      filter_since: "С даты",
      all: "Все",
      // Families of action codes (AUDIT_GROUPS below).
      groups: {
        logins: "Входы",
        conversations: "Диалоги",
        customers: "Карточки клиентов",
        requests: "Заявки",
        visits: "Визиты",
        exports: "Выгрузки",
      },
      export: "Выгрузить CSV",
      export_hint: "Все записи с этими условиями, в файл для таблиц",
      refresh: "Обновить",
      more: "Показать ещё",
      capped: "Показаны последние {count}. Уточните условия или выгрузите CSV.",
      empty: "Записей нет",
      empty_filtered: "Нет записей с такими условиями",
      loading: "Загрузка…",
      columns: {
        at: "Время",
        login: "Логин",
        action: "Действие",
        target: "Объект",
        address: "Адрес",
        details: "Подробности",
      },
      actions: {
        login: "вход",
        login_failed: "неудачный вход",
        login_throttled: "вход отложен: много попыток",
        logout: "выход",
        "conversation.open": "открыт диалог",
        "conversation.claim": "взят диалог",
        "conversation.transfer": "передан диалог",
        "conversation.release": "диалог возвращён боту",
        "conversation.close": "диалог завершён",
        "customer.card": "открыта карточка клиента",
        "customer.action": "действие по договору",
        "request.open": "открыт телефон в заявке",
        "request.change": "изменена заявка",
        "requests.export": "выгрузка заявок",
        "visit.move": "перенесён визит",
        "visit.cancel": "отменён визит",
        "audit.export": "выгрузка журнала",
      },
      details: {
        reason: "причина",
        scope: "счётчик",
        retry_after: "ждать, с",
        contract: "договор",
        to_operator: "кому",
        to_department: "в отдел",
        kind: "действие",
        outcome: "итог",
        conversation_id: "диалог",
        changed: "изменено",
        rows: "строк",
        phones: "телефоны",
        status: "статус",
        window: "время",
        filter_login: "логин",
        filter_action: "действия",
        filter_since: "с",
      },
      values: {
        wrong_password: "неверный пароль",
        unknown_login: "нет такого логина",
        disabled: "вход отключён",
        done: "выполнено",
        refused: "отказ",
        repeat: "повтор",
        full: "полностью",
        masked: "скрыты",
        yes: "да",
        no: "нет",
      },
    },
    errors: {
      network: "Сервер недоступен. Проверьте связь.",
      forbidden: "Недостаточно прав для этого действия.",
      conflict: "Диалог уже у другого оператора.",
      not_found: "Диалог не найден.",
      throttled: "Слишком много запросов, подождите немного.",
      generic: "Ошибка сервера ({status}).",
    },
  };

  var API = "/api/v1/operator";
  // What the operator may send (the server checks again, by content): bot/handoff/files.py.
  var MAX_FILE = 20 * 1024 * 1024;
  var FILE_TYPES = [
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
    ".docx", ".xlsx", ".odt", ".ods",
  ];
  var QUEUE_POLL_MS = 15000;
  var QUEUE_DEBOUNCE_MS = 200;
  var MAX_BACKOFF_MS = 30000;
  var OFFLINE_GRACE_MS = 1500; // a quick reconnect does not blink the indicator
  var NEAR_BOTTOM_PX = 80;
  var WAIT_WARN_S = 180;
  var WAIT_ALERT_S = 600;
  var DEPARTMENTS = ["billing", "technical", "sales", "general"];
  // The «Журнал»: a page of entries, at most what the server lists at once (audit.MAX_LIMIT);
  // the CSV link asks for everything the server exports (audit.MAX_EXPORT).
  var AUDIT_PAGE = 100;
  var AUDIT_MAX = 1000;
  var AUDIT_EXPORT_MAX = 100000;
  var AUDIT_FILTER_DELAY_MS = 400;
  // The action filter's families: codes and "family.*" patterns, sent comma-separated in one
  // query (and one CSV link).
  var AUDIT_GROUPS = {
    logins: ["login", "login_failed", "login_throttled", "logout"],
    conversations: ["conversation.*"],
    customers: ["customer.*"],
    requests: ["request.*"],
    visits: ["visit.*"],
    exports: ["requests.export", "audit.export"],
  };

  var state = {
    csrf: null, // in memory only
    me: null,
    status: "away",
    working: false,
    action: null, // the account action being previewed or carried out (see startAction)
    queue: [],
    queueFetchedAt: 0,
    queueLoading: false,
    queueAgain: false,
    queueTimer: null,
    pollTimer: null,
    tickTimer: null,
    knownMine: null, // ids of my conversations at the last refresh (null: not loaded yet)
    view: "conversations", // or "requests", or "audit" (supervisors)
    requests: [], // every request, newest first (phones masked)
    requestsLoaded: false,
    requestsUnseen: 0, // arrived while the operator looked at conversations
    requestOpen: null, // the id shown in the detail pane
    requestPhones: {}, // phones the operator opened, by request id (this page only)
    visitPanel: null, // {requestId, visitId, mode: "move"|"cancel", busy}: the open visit form
    visitResult: null, // {requestId, text}: what the last move/cancel did, shown on that record
    audit: [], // the «Журнал» entries shown, newest first
    auditLimit: AUDIT_PAGE, // how many are asked for («Показать ещё» adds a page)
    auditSeq: 0, // the latest load; answers to older ones are dropped
    auditLoading: false,
    auditProblem: null, // the text shown instead of the table when a load failed
    claiming: false,
    unread: {},
    openId: null,
    conv: null,
    convBuffer: [], // events for the open conversation that came while it was loading
    seen: {}, // message ids shown in the open conversation
    seenNotes: {},
    drafts: {}, // unsent text per conversation, kept while switching between them
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    offlineTimer: null,
    everConnected: false,
    toastTimer: null,
  };

  // --- the page --------------------------------------------------------------------------------
  var app = document.getElementById("app");
  document.title = T.title;

  // Login
  var loginView = el("main", "login-view");
  var loginForm = el("form", "login-form");
  loginForm.noValidate = true;
  testid(loginForm, "login-form");
  var loginHeading = el("h1", null, T.login_heading);
  loginHeading.id = "login-heading";
  loginForm.setAttribute("aria-labelledby", "login-heading");
  var loginInput = input("text", "login-input", "login");
  loginInput.autocomplete = "username";
  loginInput.autocapitalize = "off";
  loginInput.spellcheck = false;
  loginInput.required = true;
  var passwordInput = input("password", "password-input", "password");
  passwordInput.autocomplete = "current-password";
  passwordInput.required = true;
  var loginError = el("p", "form-error");
  loginError.setAttribute("role", "alert");
  loginError.hidden = true;
  var loginSubmit = el("button", "primary", T.login_submit);
  loginSubmit.type = "submit";
  testid(loginSubmit, "login-submit");
  loginForm.append(
    loginHeading,
    field(T.login_label, loginInput),
    field(T.password_label, passwordInput),
    loginError,
    loginSubmit
  );
  loginView.append(el("div", "brand", T.title), loginForm);

  // Work: header
  var workView = el("div", "work-view");
  var header = el("header", "topbar");
  var brand = el("div", "brand", T.title);
  var indicator = el("span", "indicator", T.offline);
  indicator.setAttribute("role", "status");
  indicator.title = T.offline_hint;
  indicator.hidden = true;
  indicator.dataset.state = "connecting";
  testid(indicator, "connection-indicator");
  var spacer = el("div", "spacer");
  var meName = el("span", "me");
  var statusToggle = el("button", "status-toggle");
  statusToggle.type = "button";
  statusToggle.title = T.status_hint;
  testid(statusToggle, "status-toggle");
  var logoutButton = el("button", "quiet", T.logout);
  logoutButton.type = "button";
  testid(logoutButton, "logout-button");
  var viewSwitch = el("div", "view-switch");
  viewSwitch.setAttribute("role", "group");
  var viewConversations = button(T.views.conversations, "view-conversations");
  viewConversations.setAttribute("aria-pressed", "true");
  var viewRequests = button(T.views.requests, "view-requests");
  viewRequests.setAttribute("aria-pressed", "false");
  var requestsBadge = el("span", "badge");
  testid(requestsBadge, "requests-badge");
  requestsBadge.hidden = true;
  viewRequests.appendChild(requestsBadge);
  // «Журнал» is in the switch only while a supervisor is signed in (see renderAuditTab).
  var viewAudit = button(T.views.audit, "view-audit");
  viewAudit.setAttribute("aria-pressed", "false");
  viewSwitch.append(viewConversations, viewRequests);
  header.append(brand, indicator, viewSwitch, spacer, meName, statusToggle, logoutButton);

  // Work: left column
  var lists = el("nav", "lists");
  lists.setAttribute("aria-label", T.conversations);
  var queueSection = listSection(T.queue, "queue-list", T.queue_empty);
  var mineSection = listSection(T.mine, "my-list", T.mine_empty);
  // Conversations the bot is having now: an operator may step in before the customer asks.
  var liveSection = listSection(T.live, "live-list", T.live_empty);
  lists.append(queueSection.section, mineSection.section, liveSection.section);

  // Work: centre
  var centre = el("main", "conversation");
  testid(centre, "conversation-view");
  var placeholder = el("p", "placeholder", T.pick_conversation);
  var convPane = el("div", "conv-pane");
  convPane.hidden = true;
  var convHeader = el("div", "conv-header");
  var convTitles = el("div", "conv-titles");
  var convTitle = el("h2", "conv-title");
  convTitle.id = "conv-title";
  var convMeta = el("div", "conv-meta");
  convTitles.append(convTitle, convMeta);
  var actions = el("div", "conv-actions");
  var transferButton = button(T.transfer, "transfer-button");
  var releaseButton = button(T.release, "release-button");
  var closeButton = button(T.close, "close-button");
  closeButton.classList.add("danger");
  actions.append(transferButton, releaseButton, closeButton);
  convHeader.append(convTitles, actions);
  var logWrap = el("div", "log-wrap");
  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-labelledby", "conv-title");
  log.tabIndex = 0; // scrollable with the keyboard
  var jumpButton = el("button", "jump", T.new_messages);
  jumpButton.type = "button";
  jumpButton.hidden = true;
  logWrap.append(log, jumpButton);

  var lockBar = el("div", "lock-bar");
  var lockText = el("span", "lock-text");
  var lockClaim = button(T.claim_conversation, "claim-conversation");
  lockClaim.classList.add("primary");
  lockBar.append(lockText, lockClaim);

  var composer = el("form", "composer");
  var toolbar = el("div", "composer-tools");
  var cannedSelect = el("select", "canned");
  cannedSelect.id = "canned-select";
  testid(cannedSelect, "canned-select");
  var cannedLabel = el("label", "sr-only", T.canned_label);
  cannedLabel.htmlFor = "canned-select";
  var noteToggle = el("input");
  noteToggle.type = "checkbox";
  noteToggle.id = "note-toggle";
  testid(noteToggle, "note-toggle");
  var noteLabel = el("label", "note-toggle", "");
  noteLabel.htmlFor = "note-toggle";
  noteLabel.title = T.note_toggle_hint;
  noteLabel.append(noteToggle, document.createTextNode(" " + T.note_toggle));
  toolbar.append(cannedLabel, cannedSelect, noteLabel);
  var composerInput = el("textarea", "composer-input");
  composerInput.id = "composer-input";
  composerInput.rows = 3;
  composerInput.maxLength = 4000;
  composerInput.placeholder = T.composer_placeholder;
  testid(composerInput, "composer-input");
  var composerLabel = el("label", "sr-only", T.composer_label);
  composerLabel.htmlFor = "composer-input";
  var composerSend = el("button", "primary", T.send);
  composerSend.type = "submit";
  testid(composerSend, "composer-send");
  // A file for the customer: sent at once through their channel (like the bot's invoice).
  var fileInput = el("input", "sr-only");
  fileInput.type = "file";
  fileInput.id = "composer-file";
  fileInput.accept = FILE_TYPES.join(",");
  testid(fileInput, "composer-file");
  var fileButton = el("label", "attach", T.attach);
  fileButton.htmlFor = "composer-file";
  fileButton.title = T.attach_hint;
  testid(fileButton, "composer-attach");
  var composerRow = el("div", "composer-row");
  composerRow.append(composerLabel, fileInput, fileButton, composerInput, composerSend);
  composer.append(toolbar, composerRow);

  convPane.append(convHeader, logWrap, lockBar, composer);
  centre.append(placeholder, convPane);

  // Work: right column
  var side = el("aside", "side");
  side.setAttribute("aria-label", T.customer);
  var card = el("section", "card");
  testid(card, "customer-card");
  // The actions block lives across card redraws (a new message redraws the card), so an open
  // preview or a half-filled form is not lost while the operator decides.
  var actionsBox = el("section", "account-actions");
  testid(actionsBox, "account-actions");
  var actionButtons = el("div", "action-buttons");
  var actionPanel = el("div", "action-panel");
  testid(actionPanel, "action-panel");
  actionPanel.setAttribute("aria-live", "polite");
  actionPanel.hidden = true;
  actionsBox.append(el("h3", null, T.act.heading), actionButtons, actionPanel);
  var operationsBox = el("section", "operations");
  testid(operationsBox, "operations-log");
  var historySection = el("section", "history");
  var historyList = el("ul", "history-list");
  testid(historyList, "history-list");
  historySection.append(el("h2", null, T.history), historyList);
  side.append(card, historySection);
  side.hidden = true;

  var columns = el("div", "columns");
  columns.append(lists, centre, side);

  // Work: the «Заявки» view (instead of the three columns while it is shown)
  var requestsView = el("section", "requests-view");
  testid(requestsView, "requests-view");
  requestsView.setAttribute("aria-label", T.req.heading);
  requestsView.hidden = true;
  var reqBar = el("div", "req-bar");
  var reqHeading = el("h2", null, T.req.heading + " ");
  var reqCount = el("span", "count");
  testid(reqCount, "requests-count");
  reqHeading.appendChild(reqCount);
  var reqKind = filterSelect("requests-filter-kind", T.req.kinds);
  var reqStatus = filterSelect("requests-filter-status", T.req.statuses);
  var reqCity = filterSelect("requests-filter-city", {});
  var reqExport = el("a", "req-export", T.req.export);
  reqExport.href = API + "/requests.csv";
  reqExport.setAttribute("download", "");
  testid(reqExport, "requests-export");
  reqBar.append(
    reqHeading,
    field(T.req.filter_kind, reqKind),
    field(T.req.filter_status, reqStatus),
    field(T.req.filter_city, reqCity),
    el("div", "spacer"),
    reqExport
  );
  var reqBody = el("div", "req-body");
  var reqListBox = el("div", "req-list-box");
  var reqList = el("ul", "req-list");
  testid(reqList, "requests-list");
  reqList.setAttribute("aria-label", T.req.heading);
  var reqEmpty = el("p", "empty", T.req.empty);
  reqListBox.append(reqList, reqEmpty);
  var reqPane = el("div", "req-pane");
  var reqPick = el("p", "placeholder", T.req.pick);
  var reqDetail = el("article", "req-detail");
  testid(reqDetail, "request-detail");
  reqDetail.hidden = true;
  var reqTitle = el("h2", "req-detail-title");
  var reqFacts = el("dl", "facts");
  testid(reqFacts, "request-facts");
  var reqButtons = el("div", "req-buttons");
  var reqShowPhone = button(T.req.show_phone, "request-show-phone");
  reqShowPhone.title = T.req.show_phone_hint;
  var reqTake = button(T.req.take, "request-take");
  var reqRelease = button(T.req.release, "request-release");
  var reqOpenConversation = button(T.req.open_conversation, "request-open-conversation");
  reqButtons.append(reqShowPhone, reqTake, reqRelease, reqOpenConversation);
  var reqForm = el("form", "req-form");
  var reqStatusPick = el("select");
  reqStatusPick.id = "request-status";
  testid(reqStatusPick, "request-status");
  Object.keys(T.req.statuses).forEach(function (status) {
    reqStatusPick.appendChild(option(status, T.req.statuses[status]));
  });
  var reqComment = el("textarea");
  reqComment.id = "request-comment";
  reqComment.rows = 3;
  reqComment.maxLength = 2000;
  testid(reqComment, "request-comment");
  var reqSave = el("button", "primary", T.req.save);
  reqSave.type = "submit";
  testid(reqSave, "request-save");
  reqForm.append(
    field(T.req.status_label, reqStatusPick),
    field(T.req.comment_label, reqComment),
    reqSave
  );
  var reqHistory = el("ol", "req-history");
  testid(reqHistory, "request-history");
  // A `visit` record: the visit with «Перенести…» / «Отменить визит» (renderVisit below).
  var reqVisit = el("section", "req-visit");
  testid(reqVisit, "request-visit");
  reqVisit.setAttribute("aria-label", T.req.visit.heading);
  reqVisit.hidden = true;
  var reqVisitFacts = el("dl", "facts");
  testid(reqVisitFacts, "visit-facts");
  var reqVisitNote = el("p", "muted");
  testid(reqVisitNote, "visit-note");
  var reqVisitButtons = el("div", "req-buttons");
  var reqVisitMove = button(T.req.visit.move, "visit-move");
  var reqVisitCancel = button(T.req.visit.cancel, "visit-cancel");
  reqVisitCancel.className = "danger";
  reqVisitButtons.append(reqVisitMove, reqVisitCancel);
  var reqVisitPanel = el("div", "visit-panel");
  testid(reqVisitPanel, "visit-panel");
  reqVisitPanel.hidden = true;
  var reqVisitResult = el("p", "visit-result");
  reqVisitResult.setAttribute("role", "status");
  testid(reqVisitResult, "visit-result");
  reqVisitResult.hidden = true;
  reqVisit.append(
    el("h3", null, T.req.visit.heading),
    reqVisitFacts,
    reqVisitNote,
    reqVisitResult,
    reqVisitButtons,
    reqVisitPanel
  );
  reqDetail.append(
    reqTitle,
    reqFacts,
    reqVisit,
    reqButtons,
    reqForm,
    el("h3", null, T.req.history),
    reqHistory
  );
  reqPane.append(reqPick, reqDetail);
  reqBody.append(reqListBox, reqPane);
  requestsView.append(reqBar, reqBody);

  // Work: the «Журнал» view (supervisors only), instead of the columns while it is shown
  var auditView = el("section", "audit-view");
  testid(auditView, "audit-view");
  auditView.setAttribute("aria-label", T.audit.heading);
  auditView.hidden = true;
  var audBar = el("form", "req-bar audit-bar");
  audBar.setAttribute("role", "search");
  var audHeading = el("h2", null, T.audit.heading + " ");
  var audCount = el("span", "count");
  testid(audCount, "audit-count");
  audHeading.appendChild(audCount);
  var audLogin = input("search", "audit-filter-login", "login");
  audLogin.placeholder = T.audit.login_placeholder;
  audLogin.autocomplete = "off";
  audLogin.autocapitalize = "off";
  audLogin.spellcheck = false;
  audLogin.maxLength = 100;
  var audAction = filterSelect("audit-filter-action", T.audit.groups, T.audit.all);
  var audSince = input("date", "audit-filter-since", "since");
  var audRefresh = button(T.audit.refresh, "audit-refresh");
  var audExports = el("div", "audit-exports");
  testid(audExports, "audit-exports");
  audBar.append(
    audHeading,
    field(T.audit.filter_login, audLogin),
    field(T.audit.filter_action, audAction),
    field(T.audit.filter_since, audSince),
    audRefresh,
    el("div", "spacer"),
    audExports
  );
  var audBody = el("div", "audit-body");
  var audTable = el("table", "audit-table");
  testid(audTable, "audit-table");
  audTable.setAttribute("aria-label", T.audit.heading);
  var audHead = el("thead");
  var audHeadRow = el("tr");
  ["at", "login", "action", "target", "address", "details"].forEach(function (key) {
    var th = el("th", "col-" + key, T.audit.columns[key]);
    th.scope = "col";
    audHeadRow.appendChild(th);
  });
  audHead.appendChild(audHeadRow);
  var audRows = el("tbody");
  testid(audRows, "audit-rows");
  audTable.append(audHead, audRows);
  var audEmpty = el("p", "empty");
  testid(audEmpty, "audit-empty");
  audEmpty.setAttribute("role", "status");
  var audFoot = el("div", "audit-foot");
  var audMore = button(T.audit.more, "audit-more");
  var audCapped = el("p", "muted");
  testid(audCapped, "audit-capped");
  audFoot.append(audMore, audCapped);
  audBody.append(audTable, audEmpty, audFoot);
  auditView.append(audBar, audBody);
  renderAudit();

  function filterSelect(id, labels, allText) {
    var node = el("select");
    node.id = id;
    testid(node, id);
    node.appendChild(option("", allText || T.req.all));
    Object.keys(labels).forEach(function (key) {
      node.appendChild(option(key, labels[key]));
    });
    return node;
  }

  workView.append(header, columns, requestsView, auditView);

  // Transfer dialog
  var transferDialog = el("dialog", "transfer-dialog");
  testid(transferDialog, "transfer-dialog");
  transferDialog.setAttribute("aria-labelledby", "transfer-heading");
  var transferForm = el("form");
  var transferHeading = el("h2", null, T.transfer_heading);
  transferHeading.id = "transfer-heading";
  var toFieldset = el("fieldset", "transfer-to");
  toFieldset.append(el("legend", null, T.transfer_to));
  var toDepartment = radio("transfer-kind", "department", T.transfer_to_department, true);
  var toOperator = radio("transfer-kind", "operator", T.transfer_to_operator, false);
  toFieldset.append(toDepartment.label, toOperator.label);
  var transferDepartment = el("select");
  transferDepartment.id = "transfer-department";
  testid(transferDepartment, "transfer-department");
  var transferOperator = input("text", "transfer-operator", "transfer-operator");
  transferOperator.autocomplete = "off";
  transferOperator.spellcheck = false;
  var transferNote = el("textarea");
  transferNote.id = "transfer-note";
  transferNote.rows = 3;
  transferNote.maxLength = 2000;
  testid(transferNote, "transfer-note");
  var transferOperatorField = field(T.transfer_operator, transferOperator);
  var transferDepartmentField = field(T.transfer_department, transferDepartment);
  var transferError = el("p", "form-error");
  transferError.setAttribute("role", "alert");
  transferError.hidden = true;
  var transferSubmit = el("button", "primary", T.transfer_submit);
  transferSubmit.type = "submit";
  testid(transferSubmit, "transfer-submit");
  var transferCancel = button(T.cancel, "transfer-cancel");
  var transferActions = el("div", "dialog-actions");
  transferActions.append(transferCancel, transferSubmit);
  transferForm.append(
    transferHeading,
    toFieldset,
    transferDepartmentField,
    transferOperatorField,
    field(T.transfer_note, transferNote),
    transferError,
    transferActions
  );
  transferDialog.append(transferForm);

  var toast = el("div", "toast");
  toast.setAttribute("role", "status");
  toast.setAttribute("aria-live", "polite");
  toast.hidden = true;

  loginView.hidden = true;
  workView.hidden = true;
  app.textContent = "";
  app.append(loginView, workView, transferDialog, toast);

  // --- behaviour -------------------------------------------------------------------------------
  loginForm.addEventListener("submit", function (event) {
    event.preventDefault();
    login();
  });
  logoutButton.addEventListener("click", logout);
  statusToggle.addEventListener("click", toggleStatus);
  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    sendComposer();
  });
  composerInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  noteToggle.addEventListener("change", renderComposerMode);
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = ""; // the same file may be picked again
    if (file) sendFile(file);
  });
  cannedSelect.addEventListener("change", insertCanned);
  lockClaim.addEventListener("click", function () {
    if (state.openId) claim(state.openId);
  });
  transferButton.addEventListener("click", openTransfer);
  releaseButton.addEventListener("click", function () {
    conversationAction("release", T.released);
  });
  closeButton.addEventListener("click", function () {
    conversationAction("close", T.closed);
  });
  transferForm.addEventListener("submit", function (event) {
    event.preventDefault();
    submitTransfer();
  });
  transferCancel.addEventListener("click", function () {
    transferDialog.close();
  });
  toDepartment.input.addEventListener("change", renderTransferKind);
  toOperator.input.addEventListener("change", renderTransferKind);
  log.addEventListener("scroll", function () {
    if (nearBottom()) jumpButton.hidden = true;
  });
  jumpButton.addEventListener("click", function () {
    scrollDown();
    jumpButton.hidden = true;
  });
  document.addEventListener("keydown", function (event) {
    // Alt+↑ / Alt+↓: previous / next conversation in the lists.
    if (!state.working || !event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      stepConversation(event.key === "ArrowDown" ? 1 : -1);
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && state.openId && state.unread[state.openId]) {
      delete state.unread[state.openId];
      renderLists();
    }
  });
  window.addEventListener("hashchange", function () {
    var id = idFromHash();
    if (state.working && id && id !== state.openId) openConversation(id);
  });
  window.addEventListener("online", function () {
    if (state.working && !state.ws) reconnectNow();
  });

  viewConversations.addEventListener("click", function () {
    showView("conversations");
  });
  viewRequests.addEventListener("click", function () {
    showView("requests");
  });
  [reqKind, reqStatus, reqCity].forEach(function (select) {
    select.addEventListener("change", renderRequests);
  });
  viewAudit.addEventListener("click", function () {
    showView("audit");
  });
  var auditFilterTimer = null;
  function auditFiltersChanged(delay) {
    clearTimeout(auditFilterTimer);
    auditFilterTimer = setTimeout(function () {
      state.auditLimit = AUDIT_PAGE;
      loadAudit();
    }, delay);
  }
  audLogin.addEventListener("input", function () {
    auditFiltersChanged(AUDIT_FILTER_DELAY_MS);
  });
  [audAction, audSince].forEach(function (control) {
    control.addEventListener("change", function () {
      auditFiltersChanged(0);
    });
  });
  audBar.addEventListener("submit", function (event) {
    event.preventDefault(); // Enter in the login field: now, not after the pause
    auditFiltersChanged(0);
  });
  audRefresh.addEventListener("click", function () {
    auditFiltersChanged(0);
  });
  audMore.addEventListener("click", function () {
    state.auditLimit = Math.min(state.auditLimit + AUDIT_PAGE, AUDIT_MAX);
    loadAudit();
  });
  reqStatusPick.addEventListener("change", function () {
    reqStatusPick.dataset.dirty = "1";
  });
  reqForm.addEventListener("submit", function (event) {
    event.preventDefault();
    saveRequest();
  });
  reqShowPhone.addEventListener("click", showRequestPhone);
  reqTake.addEventListener("click", function () {
    if (state.me) changeRequest({ assignee: state.me.login });
  });
  reqRelease.addEventListener("click", function () {
    changeRequest({ assignee: null });
  });
  reqOpenConversation.addEventListener("click", openRequestConversation);
  reqVisitMove.addEventListener("click", startVisitMove);
  reqVisitCancel.addEventListener("click", startVisitCancel);

  boot();

  // --- session ---------------------------------------------------------------------------------
  function boot() {
    // The session cookie may still be valid; the CSRF token is not kept across reloads, so /me
    // hands out the session's token again.
    api("GET", "/me", null, { quiet401: true })
      .then(function (data) {
        if (!data.operator || !data.csrf_token) {
          showLogin();
          return;
        }
        state.csrf = data.csrf_token;
        startWork(data.operator, data.status);
      })
      .catch(function (error) {
        showLogin(error.status === 401 ? null : message(error));
      });
  }

  function login() {
    var name = loginInput.value.trim();
    var password = passwordInput.value;
    if (!name) {
      loginInput.focus();
      return;
    }
    if (!password) {
      passwordInput.focus();
      return;
    }
    loginSubmit.disabled = true;
    loginSubmit.textContent = T.login_busy;
    loginError.hidden = true;
    api("POST", "/login", { login: name, password: password }, { quiet401: true })
      .then(function (data) {
        passwordInput.value = "";
        state.csrf = data.csrf_token || null;
        startWork(data.operator || { login: name }, data.status || "away");
      })
      .catch(function (error) {
        var text;
        if (error.status === 401) text = T.login_failed;
        else if (error.status === 429) {
          text = error.retryAfter
            ? T.login_throttled.replace("{seconds}", error.retryAfter)
            : T.login_throttled_short;
        } else text = message(error);
        showLoginError(text);
        passwordInput.value = "";
        passwordInput.focus();
      })
      .then(function () {
        loginSubmit.disabled = false;
        loginSubmit.textContent = T.login_submit;
      });
  }

  function logout() {
    var done = function () {
      signedOut(null);
    };
    api("POST", "/logout", {}, { quiet401: true }).then(done, done);
  }

  function showLogin(text) {
    workView.hidden = true;
    loginView.hidden = false;
    app.removeAttribute("aria-busy");
    if (text) showLoginError(text);
    else loginError.hidden = true;
    (loginInput.value ? passwordInput : loginInput).focus();
  }

  function showLoginError(text) {
    loginError.textContent = text;
    loginError.hidden = false;
  }

  function signedOut(text) {
    stopWork();
    state.csrf = null;
    state.me = null;
    showLogin(text);
  }

  function startWork(operator, status) {
    state.me = operator;
    state.status = status === "online" ? "online" : "away";
    state.working = true;
    state.knownMine = null;
    state.unread = {};
    state.drafts = {};
    meName.textContent = operator.name || operator.login || "";
    meName.title = operator.login || "";
    renderStatus();
    renderAuditTab();
    loginView.hidden = true;
    workView.hidden = false;
    app.removeAttribute("aria-busy");
    connect();
    loadQueue();
    state.pollTimer = setInterval(loadQueue, QUEUE_POLL_MS);
    state.tickTimer = setInterval(tick, 1000);
    var id = idFromHash();
    if (id) openConversation(id);
    else showPlaceholder();
  }

  function stopWork() {
    state.working = false;
    clearInterval(state.pollTimer);
    clearInterval(state.tickTimer);
    clearTimeout(state.queueTimer);
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.offlineTimer);
    state.reconnectTimer = null;
    if (state.ws) {
      var ws = state.ws;
      state.ws = null;
      ws.close(1000);
    }
    state.everConnected = false;
    setIndicator("connecting");
    if (transferDialog.open) transferDialog.close();
    state.queue = [];
    state.openId = null;
    state.conv = null;
    state.drafts = {};
    state.unread = {};
    // Nothing of this operator's work stays in the page for whoever signs in next.
    log.textContent = "";
    card.textContent = "";
    resetAction();
    historyList.textContent = "";
    composerInput.value = "";
    state.requests = [];
    state.requestsLoaded = false;
    state.requestsUnseen = 0;
    state.requestOpen = null;
    state.requestPhones = {};
    reqComment.value = "";
    renderRequests();
    renderRequestsBadge();
    clearTimeout(auditFilterTimer);
    state.auditSeq += 1; // an answer still on its way is dropped
    state.audit = [];
    state.auditLimit = AUDIT_PAGE;
    state.auditLoading = false;
    state.auditProblem = null;
    audLogin.value = "";
    audAction.value = "";
    audSince.value = "";
    renderAudit();
    renderAuditTab();
    showView("conversations");
    renderLists();
    showPlaceholder();
    updateTitle();
  }

  function toggleStatus() {
    var next = state.status === "online" ? "away" : "online";
    statusToggle.disabled = true;
    api("POST", "/status", { status: next })
      .then(function (data) {
        state.status = data && data.status ? data.status : next;
        renderStatus();
      })
      .catch(fail)
      .then(function () {
        statusToggle.disabled = false;
      });
  }

  function renderStatus() {
    var online = state.status === "online";
    statusToggle.textContent = online ? T.status_online : T.status_away;
    statusToggle.classList.toggle("online", online);
    statusToggle.setAttribute("aria-pressed", online ? "true" : "false");
    statusToggle.dataset.status = state.status;
  }

  // --- the HTTP API ----------------------------------------------------------------------------
  function api(method, path, body, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
      init.body = JSON.stringify(body || {});
    }
    return fetch(API + path, init).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (error) {
            data = null;
          }
          if (response.ok) return data || {};
          var error = apiError(response.status, data, response.headers.get("Retry-After"));
          if (response.status === 401 && !options.quiet401) {
            error.handled = true;
            if (state.working) signedOut(T.session_expired);
          } else if (response.status === 403 && isCsrfFailure(data) && state.working) {
            error.handled = true;
            signedOut(T.session_expired);
          }
          throw error;
        });
      },
      function () {
        throw apiError(0, null, null);
      }
    );
  }

  function apiError(status, data, retryAfter) {
    var error = new Error("HTTP " + status);
    error.status = status;
    error.data = data;
    error.retryAfter = retryAfter && /^\d+$/.test(retryAfter) ? retryAfter : null;
    error.handled = false;
    return error;
  }

  function isCsrfFailure(data) {
    return !!data && /csrf/i.test(String(data.error || ""));
  }

  function message(error) {
    switch (error.status) {
      case 0:
        return T.errors.network;
      case 403:
        return T.errors.forbidden;
      case 404:
        return T.errors.not_found;
      case 409:
        return T.errors.conflict;
      case 429:
        return T.errors.throttled;
      default:
        return T.errors.generic.replace("{status}", String(error.status));
    }
  }

  function fail(error) {
    if (error && error.handled) return;
    if (error && typeof error.status === "number") showToast(message(error), true);
    else {
      showToast(T.errors.generic.replace("{status}", "JS"), true);
      if (window.console) window.console.error(error);
    }
  }

  function convPath(id, action) {
    return "/conversations/" + encodeURIComponent(id) + (action ? "/" + action : "");
  }

  // --- the live events -------------------------------------------------------------------------
  function connect() {
    if (!state.working) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws;
    try {
      ws = new WebSocket(scheme + window.location.host + API + "/events");
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.addEventListener("open", function () {
      if (ws !== state.ws) return;
      var recovering = state.everConnected;
      state.attempt = 0;
      state.everConnected = true;
      setIndicator("online");
      if (recovering) {
        // Events may have been missed while we were away: catch up.
        loadQueue();
        if (state.openId && state.conv) refreshConversation(state.openId);
        if (state.requestsLoaded) loadRequests();
      }
    });
    ws.addEventListener("message", function (event) {
      if (ws !== state.ws) return;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame && typeof frame === "object") onEvent(frame);
    });
    ws.addEventListener("close", function (event) {
      if (ws !== state.ws) return;
      state.ws = null;
      if (event.code === 4401) {
        // The server ended the session (logout elsewhere, account disabled, new password):
        // back to the login form instead of reconnecting into a 401.
        signedOut(T.session_expired);
        return;
      }
      setIndicator("offline");
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (!state.working || state.reconnectTimer) return;
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, state.attempt));
    delay = delay / 2 + Math.random() * (delay / 2); // spread reconnects after a restart
    state.attempt += 1;
    state.reconnectTimer = setTimeout(function () {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    state.attempt = 0;
    connect();
  }

  function setIndicator(mode) {
    indicator.dataset.state = mode;
    clearTimeout(state.offlineTimer);
    if (mode === "offline") {
      state.offlineTimer = setTimeout(function () {
        if (indicator.dataset.state === "offline") indicator.hidden = false;
      }, OFFLINE_GRACE_MS);
    } else {
      indicator.hidden = true;
    }
  }

  function onEvent(frame) {
    switch (frame.type) {
      case "queue":
        scheduleQueue();
        break;
      case "message":
        onMessageEvent(frame.conversation_id, frame.message);
        break;
      case "conversation":
        onConversationEvent(frame);
        break;
      case "note":
        onNoteEvent(frame.conversation_id, frame.note);
        break;
      case "request":
        onRequestEvent(frame);
        break;
    }
  }

  function onMessageEvent(id, entry) {
    if (!id || !entry) return;
    var item = findQueued(id);
    if (item && entry.from !== "system") {
      item.last_message = { from: entry.from, text: entry.text, at: entry.at };
    }
    if (id === state.openId) {
      if (!state.conv) state.convBuffer.push(entry);
      else appendEntry(entry);
      if (document.hidden && entry.from === "customer") markUnread(id);
    } else if (entry.from === "customer" && item && isMine(item)) {
      markUnread(id);
    }
    renderLists();
  }

  function onNoteEvent(id, note) {
    // A colleague's note, or our own (already shown from the answer to the POST).
    if (!note || id !== state.openId || !state.conv) return;
    if (!state.seenNotes[noteKey(note)]) appendNote(note);
  }

  function onConversationEvent(frame) {
    var item = findQueued(frame.conversation_id);
    if (item) {
      if (frame.state) item.state = frame.state;
      if ("operator" in frame) item.operator = frame.operator;
    }
    if (frame.conversation_id === state.openId && state.conv) {
      if (frame.state) state.conv.state = frame.state;
      if ("operator" in frame) state.conv.operator = frame.operator;
      renderConversationState();
    }
    scheduleQueue();
  }

  // --- the queue and my conversations ----------------------------------------------------------
  function scheduleQueue() {
    clearTimeout(state.queueTimer);
    state.queueTimer = setTimeout(loadQueue, QUEUE_DEBOUNCE_MS);
  }

  function loadQueue() {
    if (!state.working) return;
    if (state.queueLoading) {
      state.queueAgain = true;
      return;
    }
    state.queueLoading = true;
    api("GET", "/queue")
      .then(function (data) {
        if (!state.working) return;
        state.queue = Array.isArray(data.conversations) ? data.conversations : [];
        state.queueFetchedAt = Date.now();
        noticeAssignments();
        renderLists();
        return api("GET", "/live");
      })
      .then(function (live) {
        if (!live || !state.working) return;
        var items = Array.isArray(live.conversations) ? live.conversations : [];
        syncList(liveSection, items, true);
        Object.keys(liveSection.nodes).forEach(function (id) {
          var node = liveSection.nodes[id];
          var last = node.item && node.item.last_message;
          setText(node.time, last ? timeOf(last.at) : "");
          node.time.className = "time";
          if (node.claim) setText(node.claim, T.take_over);
        });
      })
      .catch(function (error) {
        if (error.status !== 0) fail(error); // offline: the indicator already says so
      })
      .then(function () {
        state.queueLoading = false;
        if (state.queueAgain) {
          state.queueAgain = false;
          loadQueue();
        }
      });
  }

  function noticeAssignments() {
    var mine = {};
    state.queue.forEach(function (item) {
      if (isMine(item)) mine[item.conversation_id] = item;
    });
    if (state.knownMine) {
      Object.keys(mine).forEach(function (id) {
        if (!state.knownMine[id] && id !== state.openId && !state.claiming) {
          markUnread(id);
          showToast(T.assigned.replace("{who}", customerName(mine[id])), false);
        }
      });
    }
    state.knownMine = mine;
  }

  function isMine(item) {
    return !!state.me && item.operator === state.me.login && item.state !== "closed";
  }

  function isWaiting(item) {
    return !item.operator && item.state !== "closed";
  }

  function findQueued(id) {
    for (var i = 0; i < state.queue.length; i++) {
      if (state.queue[i].conversation_id === id) return state.queue[i];
    }
    return null;
  }

  function renderLists() {
    var waiting = state.queue.filter(isWaiting);
    var mine = state.queue.filter(isMine);
    syncList(queueSection, waiting, true);
    syncList(mineSection, mine, false);
    updateTitle();
  }

  function syncList(section, items, claimable) {
    // Keyed update: nodes are reused and moved only when the order changed, so a focused
    // "Взять" button keeps its focus while the queue refreshes around it.
    var list = section.list;
    var keep = {};
    items.forEach(function (item, index) {
      var id = String(item.conversation_id);
      keep[id] = true;
      var node = section.nodes[id];
      if (!node) {
        node = buildItem(id, claimable, section.itemTestid);
        section.nodes[id] = node;
      }
      fillItem(node, item, claimable);
      var current = list.children[index];
      if (current !== node.li) list.insertBefore(node.li, current || null);
    });
    Object.keys(section.nodes).forEach(function (id) {
      if (!keep[id]) {
        section.nodes[id].li.remove();
        delete section.nodes[id];
      }
    });
    section.count.textContent = items.length ? String(items.length) : "";
    section.empty.hidden = items.length > 0;
  }

  function buildItem(id, claimable, itemTestid) {
    var li = el("li", "item");
    testid(li, itemTestid);
    li.dataset.conversationId = id;
    var open = el("button", "item-open");
    open.type = "button";
    var top = el("span", "item-top");
    var channel = el("span", "chan");
    var who = el("span", "who");
    var time = el("span", "time");
    top.append(channel, who, time);
    var dept = el("span", "dept");
    var preview = el("span", "preview");
    open.append(top, dept, preview);
    open.addEventListener("click", function () {
      openConversation(id);
    });
    li.append(open);
    var claimButton = null;
    if (claimable) {
      claimButton = el("button", "claim", T.claim);
      claimButton.type = "button";
      testid(claimButton, "claim-button");
      claimButton.addEventListener("click", function () {
        claim(id);
      });
      li.append(claimButton);
    }
    return {
      li: li,
      open: open,
      channel: channel,
      who: who,
      time: time,
      dept: dept,
      preview: preview,
      claim: claimButton,
      item: null,
    };
  }

  function fillItem(node, item, claimable) {
    node.item = item;
    var id = node.li.dataset.conversationId;
    setText(node.channel, channelLabel(item.channel));
    node.channel.className = "chan chan-" + safeClass(item.channel);
    setText(node.who, customerName(item));
    setText(node.dept, departmentLabel(item.department));
    var last = item.last_message;
    var previewText = "";
    if (last) {
      previewText = (T.preview_from[last.from] || "") + (last.text || T.attachment);
    }
    setText(node.preview, previewText || T.no_messages);
    node.preview.classList.toggle("muted", !previewText);
    if (claimable) {
      node.claim.setAttribute("aria-label", T.claim + ": " + customerName(item));
      node.time.title = T.waiting;
      renderWait(node);
    } else {
      setText(node.time, last ? timeOf(last.at) : "");
      node.time.className = "time";
    }
    node.li.classList.toggle("active", id === state.openId);
    node.li.classList.toggle("unread", !!state.unread[id]);
    if (id === state.openId) node.open.setAttribute("aria-current", "true");
    else node.open.removeAttribute("aria-current");
  }

  function renderWait(node) {
    var seconds = waitingSeconds(node.item);
    setText(node.time, clock(seconds));
    node.time.className =
      "time wait" + (seconds >= WAIT_ALERT_S ? " alert" : seconds >= WAIT_WARN_S ? " warn" : "");
  }

  function waitingSeconds(item) {
    var base = Number(item.waiting_seconds) || 0;
    return Math.max(0, Math.floor(base + (Date.now() - state.queueFetchedAt) / 1000));
  }

  function tick() {
    Object.keys(queueSection.nodes).forEach(function (id) {
      renderWait(queueSection.nodes[id]);
    });
  }

  function stepConversation(direction) {
    var ids = [];
    [queueSection, mineSection].forEach(function (section) {
      for (var i = 0; i < section.list.children.length; i++) {
        ids.push(section.list.children[i].dataset.conversationId);
      }
    });
    if (!ids.length) return;
    var index = ids.indexOf(state.openId);
    var next = index < 0 ? (direction > 0 ? 0 : ids.length - 1) : index + direction;
    if (next < 0 || next >= ids.length) return;
    openConversation(ids[next]);
    var target = mineSection.nodes[ids[next]] || queueSection.nodes[ids[next]];
    if (target) target.open.focus();
  }

  function markUnread(id) {
    state.unread[id] = (state.unread[id] || 0) + 1;
  }

  function updateTitle() {
    var count = Object.keys(state.unread).length;
    document.title = (count ? "(" + count + ") " : "") + T.title;
  }

  function claim(id) {
    state.claiming = true;
    api("POST", convPath(id, "claim"), {})
      .then(function () {
        var item = findQueued(id);
        if (item) {
          item.state = "operator";
          item.operator = state.me.login;
        }
        if (state.knownMine) state.knownMine[id] = item || true;
        if (state.openId === id && state.conv) {
          state.conv.state = "operator";
          state.conv.operator = state.me.login;
          renderConversationState();
          composerInput.focus();
        } else {
          openConversation(id, true);
        }
        renderLists();
        loadQueue();
        showToast(T.claimed, false);
      })
      .catch(function (error) {
        fail(error);
        loadQueue();
        if (state.openId === id) refreshConversation(id);
      })
      .then(function () {
        state.claiming = false;
      });
  }

  // --- the open conversation -------------------------------------------------------------------
  function openConversation(id, focusComposer) {
    if (!state.working) return;
    if (id === state.openId && state.conv) {
      if (focusComposer) focusConversation();
      return;
    }
    if (state.openId && state.conv) state.drafts[state.openId] = composerInput.value;
    state.openId = id;
    state.conv = null;
    state.convBuffer = [];
    state.seen = {};
    state.seenNotes = {};
    delete state.unread[id];
    setHash(id);
    placeholder.hidden = false;
    placeholder.textContent = T.loading;
    convPane.hidden = true;
    side.hidden = true;
    renderLists();
    api("GET", convPath(id))
      .then(function (data) {
        if (state.openId !== id) return; // another one was picked meanwhile
        state.conv = data;
        renderConversation();
        var buffered = state.convBuffer;
        state.convBuffer = [];
        buffered.forEach(appendEntry);
        if (focusComposer) focusConversation();
      })
      .catch(function (error) {
        if (state.openId !== id) return;
        fail(error);
        state.openId = null;
        setHash(null);
        showPlaceholder();
        renderLists();
      });
  }

  function focusConversation() {
    if (!composerInput.disabled) composerInput.focus();
    else if (!lockBar.hidden && !lockClaim.hidden) lockClaim.focus();
  }

  function refreshConversation(id) {
    // Catch up without redrawing: only what is not on screen yet is added.
    api("GET", convPath(id))
      .then(function (data) {
        if (state.openId !== id || !state.conv) return;
        var conv = state.conv;
        ["state", "operator", "department", "card", "history", "canned"].forEach(function (key) {
          if (key in data) conv[key] = data[key];
        });
        (data.notes || []).forEach(function (note) {
          if (!state.seenNotes[noteKey(note)]) appendNote(note);
        });
        (data.messages || []).forEach(appendEntry);
        renderConversationState();
        renderCanned();
        renderCard();
        renderHistory();
      })
      .catch(fail);
  }

  function showPlaceholder() {
    placeholder.textContent = T.pick_conversation;
    placeholder.hidden = false;
    convPane.hidden = true;
    side.hidden = true;
  }

  function renderConversation() {
    placeholder.hidden = true;
    convPane.hidden = false;
    side.hidden = false;
    log.textContent = "";
    jumpButton.hidden = true;
    var conv = state.conv;
    var notes = (conv.notes || []).slice().sort(function (a, b) {
      return stamp(a.at) - stamp(b.at);
    });
    var n = 0;
    (conv.messages || []).forEach(function (entry) {
      while (n < notes.length && stamp(notes[n].at) <= stamp(entry.at)) appendNote(notes[n++]);
      appendEntry(entry, true);
    });
    while (n < notes.length) appendNote(notes[n++]);
    noteToggle.checked = false;
    composerInput.value = state.drafts[state.openId] || "";
    delete state.drafts[state.openId];
    renderConversationState();
    renderComposerMode();
    renderCanned();
    renderCard();
    renderHistory();
    scrollDown();
  }

  function renderConversationState() {
    var conv = state.conv;
    if (!conv) return;
    var item = findQueued(state.openId);
    var cardData = conv.card || null;
    setText(
      convTitle,
      (cardData && cardData.holder_name) || (item && customerName(item)) || T.anonymous
    );
    var meta = [];
    var contract =
      (cardData && cardData.contract) || (item && item.customer && item.customer.contract);
    if (contract) meta.push(T.card.contract + " " + contract);
    meta.push(channelLabel(conv.channel));
    if (conv.department) meta.push(departmentLabel(conv.department));
    var stateText = T.states[conv.state] || conv.state || "";
    if (conv.state === "operator" && conv.operator) stateText += ": " + conv.operator;
    if (stateText) meta.push(stateText);
    setText(convMeta, meta.join(" · "));

    var mine = isOwn(conv);
    transferButton.disabled = !mine;
    releaseButton.disabled = !mine;
    closeButton.disabled = !mine;
    composerInput.disabled = !mine;
    composerSend.disabled = !mine;
    fileInput.disabled = !mine;
    fileButton.classList.toggle("disabled", !mine);
    cannedSelect.disabled = !mine;
    noteToggle.disabled = !mine;
    composer.classList.toggle("locked", !mine);
    lockBar.hidden = mine;
    if (!mine) {
      var text;
      if (conv.state === "closed") text = T.locked_closed;
      else if (conv.state === "operator" && conv.operator) {
        text = T.locked_other.replace("{operator}", conv.operator);
      } else if (conv.state === "bot") text = T.locked_bot;
      else text = T.locked_queued;
      lockText.textContent = text;
      lockClaim.hidden = conv.state === "closed";
    }
    if (!mine && transferDialog.open) transferDialog.close();
  }

  function isOwn(conv) {
    return !!state.me && conv.state === "operator" && conv.operator === state.me.login;
  }

  function appendEntry(entry, quiet) {
    if (!entry) return;
    if (entry.id !== undefined && entry.id !== null) {
      if (state.seen[entry.id]) return;
      state.seen[entry.id] = true;
    }
    if (entry.from === "note" || entry.kind === "note") {
      appendNote({ author: entry.author || entry.operator, text: entry.text, at: entry.at });
      return;
    }
    var stick = quiet || nearBottom();
    log.appendChild(renderEntry(entry));
    if (stick) scrollDown();
    else jumpButton.hidden = false;
  }

  function renderEntry(entry) {
    var from = T.from[entry.from] ? entry.from : "system";
    var node = el("div", "msg from-" + from);
    testid(node, "message");
    node.dataset.from = from;
    if (entry.id !== undefined && entry.id !== null) node.dataset.id = String(entry.id);
    var meta = el("div", "meta");
    var who = T.from[from];
    var author = entry.author || entry.operator_name || null;
    if (from === "operator" && typeof author === "string" && author) who += " · " + author;
    meta.append(el("span", "who", who), timeNode(entry.at));
    var text = el("div", "text", entry.text ? String(entry.text) : T.attachment);
    if (!entry.text) text.classList.add("muted");
    node.append(meta, text);
    if (Array.isArray(entry.buttons) && entry.buttons.length) {
      var chips = el("div", "chips");
      entry.buttons.forEach(function (b) {
        var chip = el("button", "chip", b && b.title ? String(b.title) : "");
        chip.type = "button";
        chip.disabled = true;
        chips.appendChild(chip);
      });
      node.appendChild(chips);
    }
    if (Array.isArray(entry.attachments) && entry.attachments.length) {
      node.appendChild(renderFiles(entry.attachments));
    }
    return node;
  }

  // Files in the transcript (the bot's invoice, the customer's photo, the operator's file):
  // download links. Only our own file URLs are used, so a transcript can never carry a
  // javascript: or foreign link into the console.
  function renderFiles(files) {
    var list = el("div", "files");
    files.forEach(function (f) {
      var url = f && typeof f.url === "string" ? f.url : "";
      if (url.indexOf("/api/v1/operator/files/") !== 0) return;
      var link = el("a", "file", "\ud83d\udcce " + String(f.name || ""));
      testid(link, "attachment");
      link.href = url;
      link.setAttribute("download", String(f.name || ""));
      list.appendChild(link);
    });
    return list;
  }

  function appendNote(note) {
    state.seenNotes[noteKey(note)] = true;
    var stick = nearBottom();
    var node = el("div", "msg note");
    testid(node, "note");
    node.dataset.from = "note";
    var meta = el("div", "meta");
    var label = T.note + (note.author ? " · " + note.author : "");
    meta.append(el("span", "who", label), timeNode(note.at));
    node.append(meta, el("div", "text", note.text ? String(note.text) : ""));
    log.appendChild(node);
    if (stick) scrollDown();
  }

  function noteKey(note) {
    return [note.author || "", note.at || "", note.text || ""].join("\u0000");
  }

  function renderComposerMode() {
    var note = noteToggle.checked;
    composer.classList.toggle("note-mode", note);
    composerInput.placeholder = note ? T.note_placeholder : T.composer_placeholder;
    composerSend.textContent = note ? T.save_note : T.send;
  }

  function renderCanned() {
    var canned = (state.conv && state.conv.canned) || [];
    cannedSelect.textContent = "";
    var first = el("option", null, T.canned_placeholder);
    first.value = "";
    cannedSelect.appendChild(first);
    canned.forEach(function (item, index) {
      var option = el("option", null, String(item.title || item.text || ""));
      option.value = String(index);
      cannedSelect.appendChild(option);
    });
    cannedSelect.hidden = canned.length === 0;
  }

  function insertCanned() {
    var canned = (state.conv && state.conv.canned) || [];
    var item = canned[Number(cannedSelect.value)];
    cannedSelect.value = "";
    if (!item || composerInput.disabled) return;
    var start = composerInput.selectionStart;
    var end = composerInput.selectionEnd;
    composerInput.setRangeText(String(item.text || ""), start, end, "end");
    composerInput.focus();
  }

  function sendComposer() {
    var conv = state.conv;
    var id = state.openId;
    var text = composerInput.value.trim();
    if (!conv || !text || composerInput.disabled) return;
    var note = noteToggle.checked;
    composerInput.value = "";
    var request = note
      ? api("POST", convPath(id, "notes"), { text: text }).then(function (data) {
          if (state.openId !== id) return;
          var saved = data.note || { author: state.me.login, text: text, at: nowIso() };
          if (!state.seenNotes[noteKey(saved)]) appendNote(saved);
          scrollDown();
          noteToggle.checked = false;
          renderComposerMode();
        })
      : api("POST", convPath(id, "messages"), { text: text }).then(function (data) {
          if (state.openId !== id) return;
          if (data.message) appendEntry(data.message);
          scrollDown();
        });
    request.catch(function (error) {
      if (state.openId === id && !error.handled) {
        // Nothing typed is lost: the text goes back into the box.
        composerInput.value = composerInput.value ? text + "\n" + composerInput.value : text;
        showToast(T.not_sent + " " + message(error), true);
        if (error.status === 409) refreshConversation(id);
      }
    });
  }

  // multipart, so not through api(): the same session cookie and CSRF header.
  function sendFile(file) {
    var id = state.openId;
    if (!id || !state.conv || !isOwn(state.conv) || fileInput.disabled) return;
    if (file.size > MAX_FILE) {
      showToast(T.file_too_large, true);
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name);
    var headers = { Accept: "application/json" };
    if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
    fetch(API + convPath(id, "files"), {
      method: "POST", headers: headers, body: form, credentials: "same-origin", cache: "no-store",
    })
      .then(function (response) {
        return response.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (error) {
            data = null;
          }
          if (!response.ok) throw apiError(response.status, data, null);
          return data || {};
        });
      }, function () {
        throw apiError(0, null, null);
      })
      .then(function (data) {
        showToast(T.file_sent, false);
        if (state.openId === id && data.message) {
          appendEntry(data.message);
          scrollDown();
        }
      })
      .catch(function (error) {
        if (error.status === 401 || (error.status === 403 && isCsrfFailure(error.data))) {
          signedOut(T.session_expired);
          return;
        }
        var why = error.status === 413 ? T.file_too_large
          : error.status === 415 ? T.file_type : message(error);
        showToast(T.file_not_sent + " " + why, true);
      });
  }

  function conversationAction(action, done) {
    var id = state.openId;
    if (!id || !state.conv || !isOwn(state.conv)) return;
    releaseButton.disabled = closeButton.disabled = transferButton.disabled = true;
    api("POST", convPath(id, action), {})
      .then(function () {
        showToast(done, false);
        if (state.knownMine) delete state.knownMine[id];
      })
      .catch(fail)
      .then(function () {
        renderConversationState(); // the buttons again, whatever happened
        loadQueue();
        if (state.openId === id) refreshConversation(id);
      });
  }

  // --- transfer --------------------------------------------------------------------------------
  function openTransfer() {
    if (!state.conv || !isOwn(state.conv)) return;
    var names = DEPARTMENTS.slice();
    ((state.me && state.me.departments) || []).concat([state.conv.department]).forEach(
      function (name) {
        if (name && names.indexOf(name) < 0) names.push(name);
      }
    );
    transferDepartment.textContent = "";
    names.forEach(function (name) {
      var option = el("option", null, departmentLabel(name));
      option.value = name;
      transferDepartment.appendChild(option);
    });
    transferDepartment.value = state.conv.department || names[0];
    toDepartment.input.checked = true;
    transferOperator.value = "";
    transferNote.value = "";
    transferError.hidden = true;
    renderTransferKind();
    transferDialog.showModal();
    transferDepartment.focus();
  }

  function renderTransferKind() {
    var toOp = toOperator.input.checked;
    transferDepartmentField.hidden = toOp;
    transferOperatorField.hidden = !toOp;
    transferOperator.required = toOp;
  }

  function submitTransfer() {
    var id = state.openId;
    if (!id) return;
    var body = {};
    if (toOperator.input.checked) {
      var login = transferOperator.value.trim();
      if (!login) {
        transferOperator.focus();
        return;
      }
      body.to_operator = login;
    } else {
      body.to_department = transferDepartment.value;
    }
    var note = transferNote.value.trim();
    if (note) body.note = note;
    transferSubmit.disabled = true;
    transferError.hidden = true;
    api("POST", convPath(id, "transfer"), body)
      .then(function () {
        transferDialog.close();
        showToast(T.transferred, false);
        if (state.knownMine) delete state.knownMine[id];
        loadQueue();
        if (state.openId === id) refreshConversation(id);
      })
      .catch(function (error) {
        if (error.handled) return;
        transferError.textContent = message(error);
        transferError.hidden = false;
      })
      .then(function () {
        transferSubmit.disabled = false;
      });
  }

  // --- the customer --------------------------------------------------------------------------
  function renderCard() {
    var data = state.conv && state.conv.card;
    card.textContent = "";
    card.appendChild(el("h2", null, T.customer));
    if (!data) {
      card.appendChild(el("p", "muted", T.customer_unknown));
      resetAction();
      return;
    }
    if (state.action && state.action.contract !== data.contract) resetAction();
    var list = el("dl", "facts");
    row(list, "contract", T.card.contract, data.contract);
    row(list, "holder_name", T.card.holder_name, data.holder || data.holder_name);
    if (data.unavailable) {
      card.append(list, el("p", "form-error", T.card_unavailable));
      resetAction();
      return;
    }
    var status = data.status ? T.account_status[data.status] || data.status : null;
    var statusNode = row(list, "status", T.card.status, status);
    if (statusNode && data.status && data.status !== "active") statusNode.classList.add("warn");
    var balanceValue = data.balance_rub !== undefined ? data.balance_rub : data.balance;
    var balance = row(list, "balance", T.card.balance, money(balanceValue));
    if (balance && Number(balanceValue) < 0) balance.classList.add("negative");
    if (data.to_unblock_rub && Number(data.to_unblock_rub) > 0) {
      row(list, "to_unblock", T.card.to_unblock, money(data.to_unblock_rub));
    }
    if (data.tariff) {
      var tariff = String(data.tariff.name || "");
      if (data.tariff.price !== undefined && data.tariff.price !== null) {
        tariff += (tariff ? " · " : "") + money(data.tariff.price) + T.per_month;
      }
      row(list, "tariff", T.card.tariff, tariff);
    }
    if (data.pending_tariff) {
      row(
        list,
        "pending_tariff",
        T.card.pending_tariff,
        fill(T.card_values.pending_tariff, {
          tariff: data.pending_tariff.name || data.pending_tariff.tariff_id,
          effective: data.pending_tariff.effective,
        })
      );
    }
    if (data.promised_payment) {
      row(
        list,
        "promised_payment",
        T.card.promised_payment,
        fill(T.card_values.promised_payment, {
          amount: data.promised_payment.amount_rub,
          until: data.promised_payment.until,
        })
      );
    }
    if (data.suspension) {
      row(
        list,
        "suspension",
        T.card.suspension,
        fill(data.suspension.to ? T.card_values.pause_range : T.card_values.pause_open, {
          from: data.suspension.from,
          to: data.suspension.to,
        })
      );
    }
    if (Array.isArray(data.services_detail)) {
      var names = data.services_detail.map(function (service) {
        return service.name || service.service_id;
      });
      row(list, "services", T.card.services, names.length ? names.join(", ") : T.card_values.none);
    }
    if (typeof data.autopay === "boolean") {
      row(
        list,
        "autopay",
        T.card.autopay,
        data.autopay ? T.card_values.autopay_on : T.card_values.autopay_off
      );
    }
    if (data.monthly_total_rub) {
      row(list, "monthly_total", T.card.monthly_total, money(data.monthly_total_rub));
    }
    row(list, "next_charge_date", T.card.next_charge_date, dateOf(data.next_charge_date));
    row(list, "bonus_points", T.card.bonus_points, data.bonus_points);
    row(list, "phone", T.card.phone, data.phone);
    row(list, "email", T.card.email, data.email);
    row(list, "city", T.card.city, data.city);
    row(list, "address", T.card.address, data.address);
    card.appendChild(list);
    if (!data.status) {
      resetAction(); // the billing does not know the contract: nothing to act on
      return;
    }
    renderActionButtons(data);
    renderOperations(data);
    card.append(actionsBox, operationsBox);
  }

  function row(list, key, label, value) {
    if (value === undefined || value === null || value === "") return null;
    var dd = el("dd", null, String(value));
    dd.dataset.field = key;
    list.append(el("dt", null, label), dd);
    return dd;
  }

  // --- account actions -------------------------------------------------------------------------
  // Every action goes twice through the server: a dry run shows the terms the rules give now and
  // hands out an operation id; "Подтвердить" carries it out under that id (a double click or a
  // retry is done once). The server decides; the buttons only skip what plainly cannot apply.
  var ACTION_KINDS = [
    "promised_payment",
    "suspend",
    "resume",
    "change_tariff",
    "cancel_tariff_change",
    "service_on",
    "service_off",
    "autopay_off",
    "unblock",
  ];
  var TERM_MONEY = {
    amount: 1,
    fee: 1,
    price: 1,
    difference: 1,
    debt: 1,
    limit: 1,
    balance: 1,
    to_unblock: 1,
    to_stay_on: 1,
    monthly_total: 1,
  };
  var TERM_DATES = {
    until: 1,
    from: 1,
    to: 1,
    effective: 1,
    again: 1,
    since: 1,
    resume_on: 1,
    last_payment: 1,
  };
  var ACTION_FORMS = { suspend: 1, change_tariff: 1, service_on: 1, service_off: 1 };
  var TERM_HIDDEN = { now: 1, notifications: 1, link: 1, long_unpaid: 1 };

  function applicable(kind, data) {
    var available = data.available || {};
    switch (kind) {
      case "resume":
        return data.status === "suspended" || !!data.suspension;
      case "cancel_tariff_change":
        return !!data.pending_tariff;
      case "change_tariff":
        return !!(available.tariffs && available.tariffs.length);
      case "service_on":
        return !!(available.services_on && available.services_on.length);
      case "service_off":
        return !!(available.services_off && available.services_off.length);
      case "autopay_off":
        return data.autopay === true;
      case "unblock":
        return data.status === "blocked";
      default:
        return true;
    }
  }

  function renderActionButtons(data) {
    actionButtons.textContent = "";
    var busy = !!(state.action && state.action.busy);
    ACTION_KINDS.forEach(function (kind) {
      var node = button(T.act.buttons[kind], "action-" + kind);
      node.classList.add("action");
      node.dataset.kind = kind;
      node.disabled = busy || !applicable(kind, data);
      var open = !!state.action && state.action.kind === kind;
      node.setAttribute("aria-pressed", open ? "true" : "false");
      node.addEventListener("click", function () {
        startAction(kind);
      });
      actionButtons.appendChild(node);
    });
  }

  function resetAction() {
    state.action = null;
    actionPanel.textContent = "";
    actionPanel.hidden = true;
    actionPanel.removeAttribute("data-step");
  }

  function startAction(kind) {
    var data = state.conv && state.conv.card;
    if (!data || !data.contract || (state.action && state.action.busy)) return;
    state.action = {
      kind: kind,
      contract: data.contract,
      conversationId: state.openId,
      args: {},
      opId: null,
      busy: false,
    };
    renderActionButtons(data);
    if (ACTION_FORMS[kind]) {
      showActionForm(state.action, data);
    } else {
      previewAction(state.action);
    }
  }

  function panel(action, step) {
    actionPanel.textContent = "";
    actionPanel.hidden = false;
    actionPanel.dataset.step = step;
    actionPanel.dataset.kind = action.kind;
  }

  function showActionForm(action, data) {
    panel(action, "form");
    var form = el("form", "action-form");
    form.noValidate = true;
    var controls = {};
    if (action.kind === "suspend") {
      form.appendChild(el("h4", null, T.act.forms.suspend));
      controls.from = dateInput("action-from", tomorrow());
      controls.to = dateInput("action-to", "");
      var dates = el("div", "action-dates");
      dates.append(field(T.act.from, controls.from), field(T.act.to, controls.to));
      form.appendChild(dates);
    } else {
      var available = data.available || {};
      var options =
        action.kind === "change_tariff"
          ? available.tariffs || []
          : action.kind === "service_on"
            ? available.services_on || []
            : available.services_off || [];
      var select = el("select");
      select.id = "action-choice";
      testid(select, "action-choice");
      select.appendChild(new Option(T.act.choose, ""));
      options.forEach(function (item) {
        var id = item.tariff_id || item.service_id;
        var label = String(item.name || id);
        if (item.price) {
          label += " · " + money(item.price);
          if (action.kind === "change_tariff") label += T.per_month;
          else if (item.period) label += " " + (T.act.period[item.period] || "");
        }
        select.appendChild(new Option(label, id));
      });
      controls.choice = select;
      form.appendChild(field(T.act.forms[action.kind], select));
    }
    var problem = el("p", "form-error");
    problem.setAttribute("role", "alert");
    problem.hidden = true;
    testid(problem, "action-error");
    var next = el("button", "primary", T.act.preview);
    next.type = "submit";
    testid(next, "action-preview");
    var cancel = button(T.act.cancel, "action-cancel");
    cancel.addEventListener("click", cancelAction);
    var buttons = el("div", "action-row");
    buttons.append(next, cancel);
    form.append(problem, buttons);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (state.action !== action) return;
      var args = {};
      if (action.kind === "suspend") {
        if (!controls.from.value || !controls.to.value) {
          problem.textContent = T.act.need_dates;
          problem.hidden = false;
          return;
        }
        args.from = controls.from.value;
        args.to = controls.to.value;
      } else {
        if (!controls.choice.value) {
          problem.textContent = T.act.need_choice;
          problem.hidden = false;
          return;
        }
        args[action.kind === "change_tariff" ? "tariff_id" : "service_id"] = controls.choice.value;
      }
      action.args = args;
      previewAction(action);
    });
    actionPanel.appendChild(form);
    (controls.from || controls.choice).focus();
  }

  function previewAction(action) {
    panel(action, "checking");
    actionPanel.appendChild(el("p", "muted", T.act.checking));
    setBusy(action, true);
    var body = Object.assign({}, action.args, { dry_run: true });
    api("POST", actionPath(action), body)
      .then(function (data) {
        if (state.action !== action) return;
        setBusy(action, false);
        action.opId = data.op_id || null;
        showConfirm(action, (data.proposal && data.proposal.terms) || {});
      })
      .catch(function (error) {
        if (state.action !== action) return;
        setBusy(action, false);
        showActionProblem(action, error);
      });
  }

  function showConfirm(action, terms) {
    panel(action, "confirm");
    actionPanel.appendChild(el("h4", null, T.act.questions[action.kind]));
    var list = termsList(terms);
    testid(list, "action-terms");
    actionPanel.appendChild(list);
    var confirm = el("button", "primary", T.act.confirm);
    confirm.type = "button";
    testid(confirm, "action-confirm");
    confirm.addEventListener("click", function () {
      carryOut(action);
    });
    var cancel = button(T.act.cancel, "action-cancel");
    cancel.addEventListener("click", cancelAction);
    var buttons = el("div", "action-row");
    buttons.append(confirm, cancel);
    actionPanel.appendChild(buttons);
    confirm.focus();
  }

  function carryOut(action) {
    if (state.action !== action || action.busy) return;
    panel(action, "applying");
    actionPanel.appendChild(el("p", "muted", T.act.applying));
    setBusy(action, true);
    var body = Object.assign({}, action.args);
    if (action.opId) body.op_id = action.opId;
    if (action.conversationId) body.conversation_id = action.conversationId;
    api("POST", actionPath(action), body)
      .then(function (data) {
        if (state.action !== action) return;
        setBusy(action, false);
        var shown = state.conv && state.conv.card;
        if (data.card && shown && shown.contract === action.contract) state.conv.card = data.card;
        panel(action, "done");
        var result = el("p", "action-result", T.act.done[action.kind]);
        testid(result, "action-result");
        actionPanel.appendChild(result);
        if (data.repeat) actionPanel.appendChild(el("p", "muted", T.act.repeat));
        actionPanel.appendChild(closeRow());
        renderCard();
      })
      .catch(function (error) {
        if (state.action !== action) return;
        setBusy(action, false);
        showActionProblem(action, error);
        // Refused now: the account changed since the preview; show it as it is.
        if (error.status === 409) reloadCard(action.contract);
      });
  }

  function showActionProblem(action, error) {
    if (error && error.handled) return; // signed out: the login form says why
    panel(action, "problem");
    var text;
    var data = (error && error.data) || {};
    if (error.status === 409 && data.refusal) text = refusalText(data.refusal);
    else if (error.status === 503) text = T.act.errors.unavailable;
    else if (error.status === 400) text = T.act.errors.bad_request;
    else if (error.status === 404) text = T.act.errors.not_found;
    else text = message(error);
    var problem = el("p", "form-error", text);
    problem.setAttribute("role", "alert");
    testid(problem, "action-error");
    if (data.refusal) problem.dataset.reason = String(data.refusal.reason || "");
    if (error.status === 400 && data.error) problem.title = String(data.error);
    actionPanel.append(problem, closeRow());
  }

  function refusalText(refusal) {
    var reason = String(refusal.reason || "");
    var template = T.act.refusals[reason] || T.act.refusals.other;
    var terms = Object.assign({ reason: reason }, refusal.terms || {});
    return fill(T.act.refused, { text: fill(template, terms) });
  }

  function closeRow() {
    var close = button(T.act.close, "action-close");
    close.addEventListener("click", cancelAction);
    var buttons = el("div", "action-row");
    buttons.appendChild(close);
    return buttons;
  }

  function cancelAction() {
    if (state.action && state.action.busy) return;
    resetAction();
    var data = state.conv && state.conv.card;
    if (data && data.status) renderActionButtons(data);
  }

  function setBusy(action, busy) {
    action.busy = busy;
    actionPanel.setAttribute("aria-busy", busy ? "true" : "false");
    var data = state.conv && state.conv.card;
    if (data && data.status) renderActionButtons(data);
  }

  function reloadCard(contract) {
    api("GET", "/customers/" + encodeURIComponent(contract))
      .then(function (data) {
        if (!state.conv || !state.conv.card || state.conv.card.contract !== contract) return;
        state.conv.card = data;
        renderCard();
      })
      .catch(function () {
        // The panel already says what went wrong; the card stays as it was.
      });
  }

  function actionPath(action) {
    return "/customers/" + encodeURIComponent(action.contract) + "/actions/" + action.kind;
  }

  function termsList(terms) {
    var list = el("dl", "facts terms");
    Object.keys(terms).forEach(function (key) {
      if (TERM_HIDDEN[key]) return;
      var value = termValue(key, terms[key]);
      if (value === null) return;
      row(list, key, T.act.terms[key] || key, value);
    });
    return list;
  }

  function termValue(key, value) {
    if (value === null || value === undefined || value === "") return null;
    if (typeof value === "boolean") return value ? T.act.yes : T.act.no;
    if (TERM_MONEY[key]) return money(value);
    if (TERM_DATES[key]) return dateOf(value) || String(value);
    if (key === "period") return T.act.period[value] || String(value);
    if (typeof value === "object") return null;
    return String(value);
  }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      var value = termValue(key, values[key]);
      return value === null ? "—" : value;
    });
  }

  function dateInput(id, value) {
    var node = input("date", id, id);
    node.value = value;
    node.required = true;
    return node;
  }

  function tomorrow() {
    // The browser's date: a default the operator sees and may change, not a rule.
    var day = new Date();
    day.setDate(day.getDate() + 1);
    return day.getFullYear() + "-" + twoDigits(day.getMonth() + 1) + "-" + twoDigits(day.getDate());
  }

  function twoDigits(number) {
    return (number < 10 ? "0" : "") + number;
  }

  function renderOperations(data) {
    operationsBox.textContent = "";
    operationsBox.appendChild(el("h3", null, T.act.log_heading));
    var operations = Array.isArray(data.operations) ? data.operations : [];
    if (!operations.length) {
      operationsBox.appendChild(el("p", "muted", T.act.log_empty));
      return;
    }
    var list = el("ul", "operations-list");
    testid(list, "operations-list");
    operations.forEach(function (op) {
      var li = el("li", "operation");
      testid(li, "operation-item");
      li.dataset.kind = String(op.kind || "");
      li.dataset.status = String(op.status || "");
      var head = el("div", "op-head");
      head.append(
        el("span", "op-when", dateTimeOf(op.at)),
        el("span", "op-who", op.by === "bot" ? T.act.by_bot : String(op.by || ""))
      );
      var what = el("div", "op-what");
      what.append(
        el("span", "op-kind", T.act.kinds[op.kind] || String(op.kind || "")),
        el(
          "span",
          "op-status op-" + safeClass(op.status),
          T.act.status[op.status] || String(op.status || "")
        )
      );
      li.append(head, what);
      var summary = operationSummary(op);
      if (summary) li.appendChild(el("div", "op-details", summary));
      list.appendChild(li);
    });
    operationsBox.appendChild(list);
  }

  function operationSummary(op) {
    var terms = (op.details && op.details.terms) || {};
    var parts = [];
    if (terms.amount) parts.push(money(terms.amount));
    if (terms.tariff) parts.push("«" + terms.tariff + "»");
    if (terms.service) parts.push("«" + terms.service + "»");
    if (terms.from && terms.to) parts.push(fill(T.act.op_range, terms));
    if (terms.until) parts.push(fill(T.act.op_until, terms));
    if (terms.effective) parts.push(fill(T.act.op_effective, terms));
    if (op.details && op.details.code) parts.push(String(op.details.code));
    return parts.join(", ");
  }

  function renderHistory() {
    var items = (state.conv && state.conv.history) || [];
    historyList.textContent = "";
    if (!items.length) {
      historyList.appendChild(el("li", "muted", T.history_empty));
      return;
    }
    items.forEach(function (past) {
      var li = el("li", "past");
      testid(li, "history-item");
      li.dataset.conversationId = String(past.conversation_id || "");
      var details = el("details");
      var summary = el("summary");
      var messages = Array.isArray(past.messages) ? past.messages : [];
      summary.append(
        el("span", "chan chan-" + safeClass(past.channel), channelLabel(past.channel)),
        el("span", "date", dateTimeOf(past.started_at)),
        el("span", "count", messages.length + " " + T.history_messages)
      );
      var transcript = el("div", "transcript");
      details.append(summary, transcript);
      details.addEventListener("toggle", function () {
        if (!details.open || transcript.childNodes.length) return;
        if (!messages.length) transcript.appendChild(el("p", "muted", T.no_messages));
        messages.forEach(function (entry) {
          transcript.appendChild(renderEntry(entry));
        });
      });
      li.appendChild(details);
      historyList.appendChild(li);
    });
  }

  // --- the «Заявки» view ----------------------------------------------------------------------
  // The whole list is kept in the page and filtered here: city choices come from the records,
  // and a live event updates one record without refetching.
  function showView(view) {
    if (view === "audit" && !isSupervisor()) view = "conversations";
    state.view = view === "requests" || view === "audit" ? view : "conversations";
    var onRequests = state.view === "requests";
    var onAudit = state.view === "audit";
    columns.hidden = onRequests || onAudit;
    requestsView.hidden = !onRequests;
    auditView.hidden = !onAudit;
    var onConversations = state.view === "conversations";
    viewConversations.setAttribute("aria-pressed", onConversations ? "true" : "false");
    viewRequests.setAttribute("aria-pressed", onRequests ? "true" : "false");
    viewAudit.setAttribute("aria-pressed", onAudit ? "true" : "false");
    if (onRequests) {
      state.requestsUnseen = 0;
      renderRequestsBadge();
      if (!state.requestsLoaded) loadRequests();
    }
    if (onAudit) loadAudit(); // the log grows all the time: fresh on every visit
  }

  function loadRequests() {
    if (!state.working) return;
    api("GET", "/requests")
      .then(function (data) {
        if (!state.working) return;
        state.requests = Array.isArray(data.requests) ? data.requests : [];
        state.requestsLoaded = true;
        renderRequests();
      })
      .catch(fail);
  }

  function onRequestEvent(frame) {
    var record = frame.request;
    if (!record || typeof record.id !== "number") return;
    var index = findRequestIndex(record.id);
    if (index < 0) {
      state.requests.unshift(record);
      state.requests.sort(function (a, b) {
        return stamp(b.created_at) - stamp(a.created_at) || b.id - a.id;
      });
      if (state.view !== "requests") {
        state.requestsUnseen += 1;
        renderRequestsBadge();
      }
      if (frame.event === "created") {
        showToast(T.req.arrived.replace("{what}", requestTitle(record)));
      }
    } else {
      state.requests[index] = record;
    }
    renderRequests();
  }

  function findRequestIndex(id) {
    for (var i = 0; i < state.requests.length; i += 1) {
      if (state.requests[i].id === id) return i;
    }
    return -1;
  }

  function findRequest(id) {
    var index = findRequestIndex(id);
    return index < 0 ? null : state.requests[index];
  }

  function requestTitle(record) {
    return T.req.number.replace("{id}", String(record.id)) + " · " + kindLabel(record.kind);
  }

  function kindLabel(kind) {
    return T.req.kinds[kind] || String(kind || "");
  }

  function requestStatusLabel(status) {
    return T.req.statuses[status] || String(status || "");
  }

  function renderRequestsBadge() {
    requestsBadge.textContent = state.requestsUnseen ? String(state.requestsUnseen) : "";
    requestsBadge.hidden = !state.requestsUnseen;
  }

  function filteredRequests() {
    var kind = reqKind.value;
    var status = reqStatus.value;
    var city = reqCity.value;
    return state.requests.filter(function (record) {
      return (
        (!kind || record.kind === kind) &&
        (!status || record.status === status) &&
        (!city || record.city_id === city)
      );
    });
  }

  function renderRequests() {
    renderCityChoices();
    var shown = filteredRequests();
    reqList.textContent = "";
    shown.forEach(function (record) {
      reqList.appendChild(requestItem(record));
    });
    reqEmpty.hidden = shown.length > 0;
    reqEmpty.textContent = state.requests.length ? T.req.empty_filtered : T.req.empty;
    reqCount.textContent = String(shown.length);
    reqExport.href = API + "/requests.csv" + filterQuery();
    renderRequestDetail();
  }

  function filterQuery() {
    var parts = [];
    [["kind", reqKind.value], ["status", reqStatus.value], ["city_id", reqCity.value]].forEach(
      function (pair) {
        if (pair[1]) parts.push(pair[0] + "=" + encodeURIComponent(pair[1]));
      }
    );
    return parts.length ? "?" + parts.join("&") : "";
  }

  function renderCityChoices() {
    var cities = {};
    state.requests.forEach(function (record) {
      if (record.city_id) cities[record.city_id] = true;
    });
    var wanted = Object.keys(cities).sort();
    var have = Array.prototype.slice.call(reqCity.options, 1).map(function (option) {
      return option.value;
    });
    if (wanted.join("|") === have.join("|")) return;
    var picked = reqCity.value;
    while (reqCity.options.length > 1) reqCity.remove(1);
    wanted.forEach(function (city) {
      reqCity.appendChild(option(city, city));
    });
    reqCity.value = wanted.indexOf(picked) >= 0 ? picked : "";
  }

  function requestItem(record) {
    var li = el("li", "req-item");
    testid(li, "request-item");
    li.dataset.id = String(record.id);
    li.dataset.status = record.status;
    li.dataset.kind = record.kind;
    if (record.id === state.requestOpen) li.classList.add("active");
    var open = el("button", "req-open");
    open.type = "button";
    var top = el("span", "req-top");
    top.append(
      el("span", "req-title", requestTitle(record)),
      el("span", "req-status status-" + safeClass(record.status), requestStatusLabel(record.status))
    );
    var who = [record.name, record.phone, record.address].filter(Boolean).join(" · ");
    var meta = el("span", "req-meta", dateTimeOf(record.created_at));
    if (record.assignee) meta.textContent += " · " + record.assignee;
    open.append(top, el("span", "req-who", who || "—"), meta);
    open.addEventListener("click", function () {
      state.requestOpen = record.id;
      renderRequests();
    });
    li.appendChild(open);
    return li;
  }

  function renderRequestDetail() {
    var record = state.requestOpen === null ? null : findRequest(state.requestOpen);
    reqPick.hidden = !!record;
    reqDetail.hidden = !record;
    if (!record) return;
    // A redraw from a live event must not wipe what the operator is typing.
    var typing = document.activeElement === reqComment && reqDetail.dataset.id === String(record.id);
    var editingStatus = reqDetail.dataset.id === String(record.id) && reqStatusPick.dataset.dirty;
    reqDetail.dataset.id = String(record.id);
    reqDetail.dataset.status = record.status;
    setText(reqTitle, requestTitle(record));
    reqFacts.textContent = "";
    var phone = state.requestPhones[record.id] || record.phone;
    var facts = [
      ["created_at", dateTimeOf(record.created_at)],
      ["name", record.name],
      ["phone", phone],
      ["contract", record.contract],
      ["city", record.city_id],
      ["address", record.address],
      ["details", record.kind === "visit" ? "" : detailsText(record.details)],
      ["attachments", attachmentNames(record.attachments)],
      ["assignee", record.assignee || T.req.nobody],
      ["conversation", record.conversation_id],
    ];
    facts.forEach(function (fact) {
      if (!fact[1]) return;
      var dd = el("dd", null, fact[1]);
      dd.dataset.field = fact[0];
      reqFacts.append(el("dt", null, T.req.fields[fact[0]]), dd);
    });
    renderVisit(record);
    reqShowPhone.hidden = !record.phone || !!state.requestPhones[record.id];
    reqTake.hidden = record.assignee === (state.me && state.me.login);
    reqRelease.hidden = !record.assignee;
    if (!editingStatus) {
      reqStatusPick.value = record.status;
      delete reqStatusPick.dataset.dirty;
    }
    if (!typing) reqComment.value = record.comment || "";
    reqHistory.textContent = "";
    var history = record.history || [];
    if (!history.length) reqHistory.appendChild(el("li", "muted", T.req.history_empty));
    history.forEach(function (entry) {
      var li = el("li", "req-history-entry");
      testid(li, "request-history-entry");
      li.dataset.action = entry.action;
      li.append(
        el("span", "at", dateTimeOf(entry.at)),
        el("span", "req-by", entry.by === "bot" ? T.req.by_bot : entry.by),
        el("span", "req-what", historyText(entry))
      );
      reqHistory.appendChild(li);
    });
  }

  function attachmentNames(attachments) {
    return (attachments || [])
      .map(function (file) {
        return file.name || file.file_id || "";
      })
      .join(", ");
  }

  function historyText(entry) {
    var template = T.req.actions[entry.action] || entry.action;
    var shown = function (value) {
      if (value === null || value === undefined || value === "") return "—";
      if (entry.action === "status") return requestStatusLabel(value);
      return String(value);
    };
    return template.replace("{from}", shown(entry.from)).replace("{to}", shown(entry.to));
  }

  function detailsText(details) {
    if (!details || typeof details !== "object") return "";
    return Object.keys(details)
      .map(function (key) {
        var value = String(details[key]);
        if (key === "house_status") value = T.req.house_statuses[value] || value;
        return (T.req.details[key] || key) + ": " + value;
      })
      .join("; ");
  }

  function requestPath(id) {
    return "/requests/" + encodeURIComponent(String(id));
  }

  function changeRequest(body) {
    var id = state.requestOpen;
    if (id === null) return;
    reqSave.disabled = true;
    api("POST", requestPath(id), body)
      .then(function (data) {
        if (data.request) {
          var index = findRequestIndex(data.request.id);
          if (index >= 0) state.requests[index] = data.request;
        }
        delete reqStatusPick.dataset.dirty;
        reqComment.blur();
        renderRequests();
        showToast(data.changed && data.changed.length ? T.req.saved : T.req.unchanged);
      })
      .catch(fail)
      .then(function () {
        reqSave.disabled = false;
      });
  }

  function saveRequest() {
    changeRequest({ status: reqStatusPick.value, comment: reqComment.value });
  }

  function showRequestPhone() {
    var id = state.requestOpen;
    if (id === null) return;
    api("GET", requestPath(id))
      .then(function (data) {
        if (!data.request) return;
        state.requestPhones[id] = data.request.phone;
        var index = findRequestIndex(id);
        // The list keeps the masked phone; the opened one lives only in this page's memory.
        if (index >= 0) {
          data.request.phone = state.requests[index].phone;
          state.requests[index] = data.request;
        }
        renderRequests();
      })
      .catch(fail);
  }

  function openRequestConversation() {
    var record = state.requestOpen === null ? null : findRequest(state.requestOpen);
    if (!record) return;
    showView("conversations");
    openConversation(record.conversation_id);
  }

  // --- a technician's visit in the «Заявки» detail (docs/visits.md, operator API) ----------
  // The record's details carry the visit: visit_id, window (in the city's time), problem, fee.
  // Moving closes this record and opens a new one (moved_from), which is then shown.
  function visitOf(record) {
    var details = record && record.kind === "visit" ? record.details || {} : null;
    if (!details || typeof details.visit_id !== "number") return null;
    return details;
  }

  function visitOpen(record) {
    return record.status === "new" || record.status === "in_progress";
  }

  function renderVisit(record) {
    var visit = visitOf(record);
    var panel = state.visitPanel;
    if (panel && (!visit || panel.requestId !== record.id)) closeVisitPanel();
    if (state.visitResult && state.visitResult.requestId !== record.id) state.visitResult = null;
    reqVisit.hidden = !visit;
    if (!visit) return;
    reqVisit.dataset.visitId = String(visit.visit_id);
    reqVisitFacts.textContent = "";
    var fee = Number(visit.fee_rub);
    var facts = [
      ["window", visitWindowText(visit.window)],
      ["problem", visit.problem],
      ["address", record.address],
      ["fee", visit.fee_rub === undefined ? "" : fee === 0 ? T.req.visit.free : money(fee)],
    ];
    facts.forEach(function (fact) {
      if (!fact[1]) return;
      var dd = el("dd", null, fact[1]);
      dd.dataset.field = fact[0];
      reqVisitFacts.append(el("dt", null, T.req.visit[fact[0]]), dd);
    });
    var open = visitOpen(record);
    var notes = [];
    if (visit.moved_from) notes.push(T.req.visit.moved_from.replace("{id}", visit.moved_from));
    if (!open) notes.push(T.req.visit.closed);
    reqVisitNote.textContent = notes.join(" ");
    reqVisitNote.hidden = !notes.length;
    var result = state.visitResult;
    reqVisitResult.textContent = result ? result.text : "";
    reqVisitResult.hidden = !result;
    reqVisitResult.classList.toggle("form-error", !!(result && result.error));
    reqVisitButtons.hidden = !open;
    var busy = !!(state.visitPanel && state.visitPanel.busy);
    reqVisitMove.disabled = busy;
    reqVisitCancel.disabled = busy;
    if (!open && state.visitPanel && !state.visitPanel.busy) closeVisitPanel();
  }

  // "2026-03-12 09:00–11:00 (Asia/Chita)" → "чт, 12 марта 2026, 09:00–11:00 (Asia/Chita)"
  function visitWindowText(value) {
    var text = String(value || "");
    var match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}:\d{2})–(\d{2}:\d{2})(.*)$/.exec(text);
    if (!match) return text;
    return calendarDay(match[1], match[2], match[3], true) + ", " + match[4] + "–" + match[5] +
      match[6];
  }

  // A window of the windows endpoint: ISO times with the city's offset, shown as they are.
  function windowLabel(slot) {
    var start = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}:\d{2})/.exec(String(slot.starts_at || ""));
    var end = /T(\d{2}:\d{2})/.exec(String(slot.ends_at || ""));
    if (!start) return String(slot.id);
    return calendarDay(start[1], start[2], start[3], false) + ", " + start[4] +
      (end ? "–" + end[1] : "");
  }

  function calendarDay(year, month, day, withYear) {
    var date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
    var text = T.req.visit.weekdays[date.getUTCDay()] + ", " + Number(day) + " " +
      T.req.visit.months[Number(month) - 1];
    return withYear ? text + " " + year : text;
  }

  function visitPath(visitId, tail) {
    return "/visits/" + encodeURIComponent(String(visitId)) + (tail || "");
  }

  function openVisitPanel(mode) {
    var record = state.requestOpen === null ? null : findRequest(state.requestOpen);
    var visit = visitOf(record);
    if (!visit || !visitOpen(record)) return null;
    if (state.visitPanel && state.visitPanel.busy) return null;
    state.visitResult = null;
    reqVisitResult.hidden = true;
    state.visitPanel = { requestId: record.id, visitId: visit.visit_id, mode: mode, busy: false };
    reqVisitPanel.textContent = "";
    reqVisitPanel.dataset.mode = mode;
    reqVisitPanel.hidden = false;
    return state.visitPanel;
  }

  function closeVisitPanel() {
    state.visitPanel = null;
    reqVisitPanel.textContent = "";
    reqVisitPanel.hidden = true;
    delete reqVisitPanel.dataset.mode;
    reqVisitMove.disabled = false;
    reqVisitCancel.disabled = false;
  }

  function setVisitBusy(panel, busy) {
    panel.busy = busy;
    reqVisitMove.disabled = busy;
    reqVisitCancel.disabled = busy;
    Array.prototype.forEach.call(reqVisitPanel.querySelectorAll("button, select"), function (node) {
      node.disabled = busy;
    });
  }

  function startVisitMove() {
    var panel = openVisitPanel("move");
    if (!panel) return;
    loadVisitWindows(panel, null);
  }

  // reason: why the windows are loaded again ("taken", "past", "unknown"), shown above them.
  function loadVisitWindows(panel, reason) {
    reqVisitPanel.textContent = "";
    if (reason) reqVisitPanel.appendChild(visitProblem(T.req.visit.errors[reason], reason));
    var loading = el("p", "muted", T.req.visit.loading_windows);
    reqVisitPanel.appendChild(loading);
    setVisitBusy(panel, true);
    api("GET", visitPath(panel.visitId, "/windows"))
      .then(function (data) {
        if (state.visitPanel !== panel) return;
        setVisitBusy(panel, false);
        loading.remove();
        var windows = Array.isArray(data.windows) ? data.windows : [];
        if (!windows.length) {
          var none = el("p", "muted", T.req.visit.no_windows);
          testid(none, "visit-no-windows");
          reqVisitPanel.append(none, visitPanelRow([]));
          return;
        }
        var pick = el("select");
        pick.id = "visit-window";
        testid(pick, "visit-window");
        windows.forEach(function (slot) {
          pick.appendChild(option(slot.id, windowLabel(slot)));
        });
        var confirm = button(T.req.visit.confirm_move, "visit-move-confirm");
        confirm.className = "primary";
        confirm.addEventListener("click", function () {
          var chosen = pick.options[pick.selectedIndex];
          if (chosen) moveVisit(panel, chosen.value, chosen.textContent);
        });
        reqVisitPanel.append(field(T.req.visit.new_window, pick), visitPanelRow([confirm]));
      })
      .catch(function (error) {
        if (state.visitPanel !== panel) return;
        setVisitBusy(panel, false);
        loading.remove();
        visitFailed(panel, error);
      });
  }

  function visitPanelRow(buttons) {
    var row = el("div", "req-buttons");
    var close = button(T.req.visit.close_form, "visit-panel-close");
    close.addEventListener("click", function () {
      if (state.visitPanel && !state.visitPanel.busy) closeVisitPanel();
    });
    buttons.forEach(function (node) {
      row.appendChild(node);
    });
    row.appendChild(close);
    return row;
  }

  function moveVisit(panel, windowId, label) {
    setVisitBusy(panel, true);
    api("POST", visitPath(panel.visitId), { action: "move", window: windowId })
      .then(function (data) {
        var moved = data.visit || {};
        var next = typeof moved.request_id === "number" ? moved.request_id : panel.requestId;
        visitDone(panel, next, T.req.visit.moved.replace("{when}", label));
      })
      .catch(function (error) {
        if (state.visitPanel !== panel) return;
        setVisitBusy(panel, false);
        var reason = visitReason(error);
        // The window went meanwhile: fresh windows with the reason above them.
        if (reason === "taken" || reason === "past" || reason === "unknown") {
          loadVisitWindows(panel, reason);
        } else visitFailed(panel, error);
      });
  }

  function startVisitCancel() {
    var panel = openVisitPanel("cancel");
    if (!panel) return;
    var question = el("p", "visit-question", T.req.visit.cancel_question);
    testid(question, "visit-cancel-question");
    var confirm = button(T.req.visit.confirm_cancel, "visit-cancel-confirm");
    confirm.className = "danger";
    var back = button(T.req.visit.back, "visit-cancel-back");
    confirm.addEventListener("click", function () {
      cancelVisit(panel);
    });
    back.addEventListener("click", function () {
      if (!panel.busy) closeVisitPanel();
    });
    var row = el("div", "req-buttons");
    row.append(confirm, back);
    reqVisitPanel.append(question, row);
    back.focus();
  }

  function cancelVisit(panel) {
    setVisitBusy(panel, true);
    api("POST", visitPath(panel.visitId), { action: "cancel" })
      .then(function () {
        visitDone(panel, panel.requestId, T.req.visit.cancelled);
      })
      .catch(function (error) {
        if (state.visitPanel !== panel) return;
        setVisitBusy(panel, false);
        visitFailed(panel, error);
      });
  }

  function visitDone(panel, requestId, text) {
    if (state.visitPanel === panel) closeVisitPanel();
    state.requestOpen = requestId;
    state.visitResult = { requestId: requestId, text: text };
    showToast(text);
    loadRequests();
  }

  function visitReason(error) {
    var said = String((error && error.data && error.data.error) || "");
    var match = /cannot move: (\w+)/.exec(said);
    if (match) return match[1];
    if (error && error.status === 409) return "not_booked";
    return "";
  }

  function visitFailed(panel, error) {
    if (error && error.handled) {
      closeVisitPanel();
      return;
    }
    var reason = visitReason(error);
    var errors = T.req.visit.errors;
    var text;
    if (errors[reason]) text = errors[reason];
    else if (error && error.status === 404) text = errors.not_found;
    else if (error && error.status === 400) text = errors.bad_request;
    else text = message(error || {});
    if (reason === "not_booked") {
      // The board has moved on (the customer or another operator): the record as it is now.
      closeVisitPanel();
      state.visitResult = { requestId: panel.requestId, text: text, error: true };
      loadRequests();
      return;
    }
    reqVisitPanel.textContent = "";
    reqVisitPanel.append(visitProblem(text, reason), visitPanelRow([]));
  }

  function visitProblem(text, reason) {
    var problem = el("p", "form-error", text);
    problem.setAttribute("role", "alert");
    testid(problem, "visit-error");
    if (reason) problem.dataset.reason = reason;
    return problem;
  }

  function option(value, text) {
    var node = el("option", null, text);
    node.value = value;
    return node;
  }

  // --- the «Журнал» view (supervisors) --------------------------------------------------------
  // What operators did, newest first, filtered by the server (GET …/audit); the CSV links carry
  // the same filters (…/audit.csv, itself written down in the log).
  function isSupervisor() {
    return !!state.me && state.me.role === "supervisor";
  }

  function renderAuditTab() {
    if (isSupervisor()) {
      if (viewAudit.parentNode !== viewSwitch) viewSwitch.appendChild(viewAudit);
    } else if (viewAudit.parentNode) {
      viewSwitch.removeChild(viewAudit);
      if (state.view === "audit") showView("conversations");
    }
  }

  function auditSince() {
    // The date picked is a day of the operator's own calendar: from its local midnight.
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(audSince.value);
    if (!match) return null;
    var midnight = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
    return isNaN(midnight.getTime()) ? null : midnight.toISOString();
  }

  // The query string of the filters: "?action=…&login=…&since=…&limit=…".
  function auditQuery(limit) {
    var parts = [];
    var actions = AUDIT_GROUPS[audAction.value];
    if (actions) parts.push("action=" + encodeURIComponent(actions.join(",")));
    var login = audLogin.value.trim();
    if (login) parts.push("login=" + encodeURIComponent(login));
    var since = auditSince();
    if (since) parts.push("since=" + encodeURIComponent(since));
    parts.push("limit=" + limit);
    return "?" + parts.join("&");
  }

  function loadAudit() {
    if (!state.working || !isSupervisor()) return;
    clearTimeout(auditFilterTimer);
    state.auditSeq += 1;
    var seq = state.auditSeq;
    var limit = state.auditLimit;
    state.auditLoading = true;
    renderAudit();
    api("GET", "/audit" + auditQuery(limit))
      .then(function (data) {
        if (seq !== state.auditSeq || !state.working) return;
        state.audit = data && Array.isArray(data.entries) ? data.entries.slice(0, limit) : [];
        state.auditProblem = null;
      })
      .catch(function (error) {
        if (seq !== state.auditSeq) return;
        if (error && error.handled) return;
        state.audit = [];
        state.auditProblem = error && typeof error.status === "number" ? message(error) : null;
        fail(error);
      })
      .then(function () {
        if (seq !== state.auditSeq) return;
        state.auditLoading = false;
        renderAudit();
      });
  }

  function renderAudit() {
    audRows.textContent = "";
    state.audit.forEach(function (entry) {
      audRows.appendChild(auditRow(entry));
    });
    audCount.textContent = state.audit.length ? String(state.audit.length) : "";
    var filtered = !!(audLogin.value.trim() || audAction.value || audSince.value);
    audEmpty.hidden = state.audit.length > 0;
    audEmpty.textContent = state.auditLoading
      ? T.audit.loading
      : state.auditProblem || (filtered ? T.audit.empty_filtered : T.audit.empty);
    audTable.hidden = !state.audit.length;
    renderAuditExports();
    renderAuditFoot();
  }

  function renderAuditFoot() {
    var full = state.audit.length >= state.auditLimit;
    audMore.hidden = !full || state.auditLimit >= AUDIT_MAX;
    audMore.disabled = state.auditLoading;
    audCapped.hidden = !full || state.auditLimit < AUDIT_MAX;
    audCapped.textContent = T.audit.capped.replace("{count}", String(state.audit.length));
  }

  function renderAuditExports() {
    audExports.textContent = "";
    var link = el("a", "req-export", T.audit.export);
    link.href = API + "/audit.csv" + auditQuery(AUDIT_EXPORT_MAX);
    link.setAttribute("download", "");
    link.title = T.audit.export_hint;
    testid(link, "audit-export");
    audExports.appendChild(link);
  }

  function auditActionLabel(action) {
    if (Object.prototype.hasOwnProperty.call(T.audit.actions, action)) {
      return T.audit.actions[action];
    }
    // A family the filter asked for ("customer.*", in an export's details): its name.
    var groups = Object.keys(AUDIT_GROUPS);
    for (var i = 0; i < groups.length; i += 1) {
      var codes = AUDIT_GROUPS[groups[i]];
      if (codes.join(",") === action) return T.audit.groups[groups[i]];
    }
    return String(action || "");
  }

  function auditRow(entry) {
    var tr = el("tr", "audit-row");
    testid(tr, "audit-row");
    tr.dataset.action = String(entry.action || "");
    tr.dataset.login = String(entry.login || "");
    var when = el("time", null, auditTime(entry.at));
    if (stamp(entry.at)) when.dateTime = new Date(stamp(entry.at)).toISOString();
    var at = el("td", "col-at");
    at.appendChild(when);
    var action = el("td", "col-action", auditActionLabel(entry.action));
    action.title = String(entry.action || "");
    var details = auditDetails(entry.details);
    var detailsCell = el("td", "col-details", details || "—");
    if (details) detailsCell.title = details;
    tr.append(
      at,
      el("td", "col-login", String(entry.login || "—")),
      action,
      el("td", "col-target", entry.target ? String(entry.target) : "—"),
      el("td", "col-address", entry.address ? String(entry.address) : "—"),
      detailsCell
    );
    return tr;
  }

  function auditTime(at) {
    var time = stamp(at);
    if (!time) return String(at || "");
    return new Date(time).toLocaleString("ru-RU", {
      day: "2-digit",
      month: "2-digit",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
  }

  // {"reason": "wrong_password", "rows": 3} → "причина: неверный пароль; строк: 3"
  function auditDetails(details) {
    if (!details || typeof details !== "object") return "";
    var parts = [];
    Object.keys(details).forEach(function (key) {
      var value = details[key];
      if (value === null || value === undefined || value === "") return;
      var text;
      if (typeof value === "boolean") text = value ? T.audit.values.yes : T.audit.values.no;
      else if (key === "filter_since" && typeof value === "number") {
        text = auditTime(new Date(value * 1000).toISOString());
      } else if (key === "filter_action") text = auditActionLabel(value);
      else if (typeof value === "object") text = JSON.stringify(value);
      else {
        text = String(value);
        if (Object.prototype.hasOwnProperty.call(T.audit.values, text)) {
          text = T.audit.values[text];
        }
      }
      var name = Object.prototype.hasOwnProperty.call(T.audit.details, key)
        ? T.audit.details[key]
        : key;
      parts.push(name + ": " + text);
    });
    return parts.join("; ");
  }

  // --- little helpers --------------------------------------------------------------------------
  function showToast(text, isError) {
    toast.textContent = text;
    toast.classList.toggle("error", !!isError);
    toast.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(function () {
      toast.hidden = true;
    }, isError ? 8000 : 4000);
  }

  function customerName(item) {
    var customer = item.customer || {};
    return customer.name || customer.contract || T.anonymous;
  }

  function channelLabel(channel) {
    return T.channels[channel] || String(channel || "?");
  }

  function departmentLabel(name) {
    return T.departments[name] || String(name || "");
  }

  function safeClass(value) {
    return String(value || "other").replace(/[^a-z0-9_-]/gi, "");
  }

  function money(value) {
    var number = Number(value);
    if (value === null || value === undefined || value === "" || !isFinite(number)) return null;
    try {
      return new Intl.NumberFormat("ru-RU", { style: "currency", currency: "RUB" }).format(number);
    } catch (error) {
      return number.toFixed(2) + " ₽";
    }
  }

  function clock(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return (minutes < 10 ? "0" : "") + minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function stamp(at) {
    var time = at ? new Date(at).getTime() : NaN;
    return isNaN(time) ? 0 : time;
  }

  function nowIso() {
    return new Date().toISOString();
  }

  function timeOf(at) {
    var time = stamp(at);
    if (!time) return "";
    return new Date(time).toLocaleTimeString("ru-RU", { hour: "2-digit", minute: "2-digit" });
  }

  function dateTimeOf(at) {
    var time = stamp(at);
    if (!time) return "";
    return new Date(time).toLocaleString("ru-RU", {
      day: "2-digit",
      month: "2-digit",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  function dateOf(value) {
    // "2026-03-15" is a calendar date: shown as is, not shifted by the browser's time zone.
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value || ""));
    return match ? match[3] + "." + match[2] + "." + match[1] : null;
  }

  function timeNode(at) {
    var node = el("time", "at", timeOf(at));
    if (stamp(at)) {
      node.dateTime = new Date(stamp(at)).toISOString();
      node.title = dateTimeOf(at);
    }
    return node;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function idFromHash() {
    var raw = window.location.hash.replace(/^#/, "");
    if (!raw) return null;
    try {
      return decodeURIComponent(raw);
    } catch (error) {
      return null;
    }
  }

  function setHash(id) {
    var target = id ? "#" + encodeURIComponent(id) : window.location.pathname;
    if (window.history && window.history.replaceState) window.history.replaceState(null, "", target);
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function testid(node, value) {
    node.setAttribute("data-testid", value);
  }

  function button(text, id) {
    var node = el("button", null, text);
    node.type = "button";
    testid(node, id);
    return node;
  }

  function input(type, id, name) {
    var node = el("input");
    node.type = type;
    node.id = id;
    node.name = name;
    testid(node, id);
    return node;
  }

  function field(labelText, control) {
    var wrap = el("div", "field");
    var label = el("label", null, labelText);
    label.htmlFor = control.id;
    wrap.append(label, control);
    return wrap;
  }

  function radio(name, value, labelText, checked) {
    var node = el("input");
    node.type = "radio";
    node.name = name;
    node.value = value;
    node.checked = checked;
    var label = el("label", "radio");
    label.append(node, document.createTextNode(" " + labelText));
    return { input: node, label: label };
  }

  function listSection(title, listTestid, emptyText) {
    var section = el("section", "list-section");
    var heading = el("h2");
    var count = el("span", "count");
    heading.append(document.createTextNode(title + " "), count);
    var list = el("ul", "items");
    testid(list, listTestid);
    list.setAttribute("aria-label", title);
    var empty = el("p", "empty", emptyText);
    section.append(heading, list, empty);
    return {
      section: section,
      list: list,
      count: count,
      empty: empty,
      nodes: {},
      itemTestid: { "queue-list": "queue-item", "my-list": "my-item", "live-list": "live-item" }[
        listTestid
      ],
    };
  }
})();
